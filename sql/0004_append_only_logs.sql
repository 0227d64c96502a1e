-- The log tables take one row per request and are only ever appended to, in time order. BRIN
-- indexes on created_at cost next to nothing to maintain and serve time-range queries and
-- retention; the btree indexes they replace cost every insert. The auth log keeps the key's id
-- without a foreign key: a log row must never be refused (or need a lookup) because of the
-- key it mentions.
DROP INDEX IF EXISTS gateway_request_log_client_created;
DROP INDEX IF EXISTS gateway_operation_log_client_created;
DROP INDEX IF EXISTS api_key_auth_log_created_at;
CREATE INDEX IF NOT EXISTS gateway_request_log_created_brin ON gateway_request_log USING brin (created_at);
CREATE INDEX IF NOT EXISTS gateway_operation_log_created_brin ON gateway_operation_log USING brin (created_at);
CREATE INDEX IF NOT EXISTS api_key_auth_log_created_brin ON api_key_auth_log USING brin (created_at);
ALTER TABLE api_key_auth_log DROP CONSTRAINT IF EXISTS api_key_auth_log_api_key_id_fkey;
