-- Conductor schema, version 3: listing by number (`list --number`, GET /api/v1/messages?number=,
-- GET /api/v1/conversations/{number}) uses an index instead of scanning every row: on 100 000
-- messages that is about 0.25 ms instead of 166 ms per page (`cargo bench -p conductor-http`).
-- `number_key` is a generated column; SQLite indexes those like any other.

CREATE INDEX messages_number ON messages (number_key, id);
