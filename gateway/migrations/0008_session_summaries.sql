-- A rolling summary of each session's older messages, written off the hot path as the
-- session grows; `summarized_messages` is how many of its first messages it covers.
ALTER TABLE sessions ADD COLUMN summary TEXT;
ALTER TABLE sessions ADD COLUMN summarized_messages BIGINT NOT NULL DEFAULT 0;
