-- Published events. A write made with X-Publish-Event: true on a captured table emits a logical
-- decoding message after it commits; the change data capture reader keeps it in cdc_events like
-- a row change of that table, with op 'event' and the event as its row, so subscribers of the
-- table receive it in commit order and can replay it.
ALTER TABLE cdc_events DROP CONSTRAINT IF EXISTS cdc_events_op_check;
ALTER TABLE cdc_events ADD CONSTRAINT cdc_events_op_check
    CHECK (op IN ('insert', 'update', 'delete', 'event'));
