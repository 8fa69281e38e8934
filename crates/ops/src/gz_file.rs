//! Compressed files published whole: a gzip stream is written to a hidden work file, fsynced,
//! then renamed to its published name and the folder fsynced. Backups and retention exports
//! both rely on this so a reader (or a crash) never sees half a file under the real name.

use std::fs::{self, File};
use std::future::Future;
use std::io::{BufWriter, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

/// The writer of a work file: gzip over a buffered file.
pub(crate) type GzWriter = GzEncoder<BufWriter<File>>;

/// Which step of [`finish`] failed; callers word their errors per step.
#[derive(Debug)]
pub(crate) enum FinishError {
    /// Ending the gzip stream or flushing the buffer.
    Finish(std::io::Error),
    /// Fsyncing the file.
    Sync(std::io::Error),
}

/// Creates (or truncates) `work` for a gzip stream at the default level.
pub(crate) fn create(work: &Path) -> std::io::Result<GzWriter> {
    let file = File::create(work)?;
    Ok(GzEncoder::new(BufWriter::new(file), Compression::default()))
}

/// Ends the gzip stream, flushes it and fsyncs the file, so it is complete on disk before it
/// is published; returns the file so the caller can measure it.
pub(crate) fn finish(writer: GzWriter) -> Result<File, FinishError> {
    let file = writer
        .finish()
        .and_then(|mut buffered| {
            buffered.flush()?;
            buffered.into_inner().map_err(|e| e.into_error())
        })
        .map_err(FinishError::Finish)?;
    file.sync_all().map_err(FinishError::Sync)?;
    Ok(file)
}

/// Awaits `fill` (which writes and [`finish`]es `work`), then renames `work` to `published`
/// and fsyncs `dir`. On any failure `work` is removed, so no partial file is left behind.
pub(crate) async fn publish<T, E>(
    dir: &Path,
    work: &Path,
    published: &Path,
    fill: impl Future<Output = Result<T, E>>,
    rename_error: impl FnOnce(std::io::Error) -> E,
) -> Result<T, E> {
    let result = async {
        let value = fill.await?;
        fs::rename(work, published).map_err(rename_error)?;
        sync_dir(dir);
        Ok(value)
    }
    .await;
    if result.is_err() {
        let _ = fs::remove_file(work);
    }
    result
}

/// Fsyncs a folder so a rename in it survives a power cut (a no-op where folders cannot be
/// opened, as on Windows).
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}
