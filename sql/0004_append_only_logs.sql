-- The log tables take one row per request and are only ever appended to, in time order, so
-- every index and every conversion on them is paid once per request. BRIN indexes on created_at
-- cost next to nothing to maintain and serve time-range queries and retention; the btree indexes
-- they replace cost every insert. The auth log keeps the key's id
-- without a foreign key: a log row must never be refused (or need a lookup) because of the
-- key it mentions.
DROP INDEX IF EXISTS gateway_request_log_client_created;
DROP INDEX IF EXISTS gateway_operation_log_client_created;
DROP INDEX IF EXISTS api_key_auth_log_created_at;
CREATE INDEX IF NOT EXISTS gateway_request_log_created_brin ON gateway_request_log USING brin (created_at);
CREATE INDEX IF NOT EXISTS gateway_operation_log_created_brin ON gateway_operation_log USING brin (created_at);
CREATE INDEX IF NOT EXISTS api_key_auth_log_created_brin ON api_key_auth_log USING brin (created_at);
ALTER TABLE api_key_auth_log DROP CONSTRAINT IF EXISTS api_key_auth_log_api_key_id_fkey;
-- Nor does a log table need a primary key index: `id` stays, generated, for ordering.
ALTER TABLE gateway_request_log DROP CONSTRAINT IF EXISTS gateway_request_log_pkey;
ALTER TABLE gateway_operation_log DROP CONSTRAINT IF EXISTS gateway_operation_log_pkey;
ALTER TABLE api_key_auth_log DROP CONSTRAINT IF EXISTS api_key_auth_log_pkey;
-- Rights are plain names (letters, digits, '_', '$', '-', '.', '*'), so a text array holds them
-- exactly and costs far less to write than jsonb.
ALTER TABLE api_key_auth_log
    ALTER COLUMN required_rights TYPE text[] USING translate(required_rights::text, '[]', '{}')::text[],
    ALTER COLUMN granted_rights TYPE text[] USING translate(granted_rights::text, '[]', '{}')::text[];
