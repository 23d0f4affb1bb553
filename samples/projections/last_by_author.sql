-- the last message of every author (state per key: append-only rows, latest per key in a view)
CREATE TABLE author_messages (seq BIGINT, author VARCHAR, channel VARCHAR, text VARCHAR, ts TIMESTAMP);
INSERT INTO author_messages
    SELECT seq, payload->>'author', stream, payload->>'text', source_time FROM batch WHERE type = 'message';
CREATE VIEW last_message_by_author AS
    SELECT author, arg_max(text, seq) AS text, arg_max(channel, seq) AS channel, max(ts) AS last_at
    FROM author_messages GROUP BY author;
