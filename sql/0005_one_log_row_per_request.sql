-- One log row per request. The operation a request ran and the API-key decision it met are
-- columns of its gateway_request_log row (as the reference's request log already carried the key
-- decision), so the database stores one row per request instead of up to three: writing log rows
-- is most of what statistics cost. gateway_operation_log and api_key_auth_log become views of
-- gateway_request_log with the columns they had, so every query written against them still
-- works. The rows already in the two tables move onto their requests' rows first.
ALTER TABLE gateway_request_log
    ADD COLUMN IF NOT EXISTS operation text,
    ADD COLUMN IF NOT EXISTS table_name text,
    ADD COLUMN IF NOT EXISTS row_count bigint,
    ADD COLUMN IF NOT EXISTS message text,
    ADD COLUMN IF NOT EXISTS details jsonb,
    ADD COLUMN IF NOT EXISTS api_key_id bigint,
    ADD COLUMN IF NOT EXISTS api_key_enforced boolean,
    ADD COLUMN IF NOT EXISTS api_key_authenticated boolean,
    ADD COLUMN IF NOT EXISTS api_key_authorized boolean,
    ADD COLUMN IF NOT EXISTS api_key_auth_reason text,
    ADD COLUMN IF NOT EXISTS required_rights text[],
    ADD COLUMN IF NOT EXISTS granted_rights text[];

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class
               WHERE oid = to_regclass('gateway_operation_log') AND relkind = 'r') THEN
        UPDATE gateway_request_log r
           SET operation = o.operation, table_name = o.table_name, row_count = o.row_count,
               message = o.message, details = o.details
          FROM gateway_operation_log o
         WHERE o.request_id = r.request_id;
        INSERT INTO gateway_request_log (created_at, request_id, client, method, path,
               status_code, duration_ms, operation, table_name, row_count, message, details)
        SELECT o.created_at, o.request_id, o.client, o.method, o.path, o.status_code,
               o.duration_ms, o.operation, o.table_name, o.row_count, o.message, o.details
          FROM gateway_operation_log o
         WHERE NOT EXISTS (SELECT 1 FROM gateway_request_log r WHERE r.request_id = o.request_id);
        DROP TABLE gateway_operation_log;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class
               WHERE oid = to_regclass('api_key_auth_log') AND relkind = 'r') THEN
        UPDATE gateway_request_log r
           SET api_key_id = a.api_key_id,
               api_key_public_id = coalesce(r.api_key_public_id, a.api_key_public_id),
               api_key_enforced = a.enforced, api_key_authenticated = a.authenticated,
               api_key_authorized = a.authorized, api_key_auth_reason = a.failure_reason,
               required_rights = a.required_rights, granted_rights = a.granted_rights
          FROM api_key_auth_log a
         WHERE a.request_id = r.request_id;
        -- A decision whose request row is missing keeps status 0 (unknown).
        INSERT INTO gateway_request_log (created_at, request_id, client, method, path,
               status_code, api_key_id, api_key_public_id, api_key_enforced,
               api_key_authenticated, api_key_authorized, api_key_auth_reason, required_rights,
               granted_rights, remote_addr, user_agent)
        SELECT a.created_at, a.request_id, a.client_name, a.method, a.path, 0, a.api_key_id,
               a.api_key_public_id, a.enforced, a.authenticated, a.authorized,
               a.failure_reason, a.required_rights, a.granted_rights, a.remote_addr, a.user_agent
          FROM api_key_auth_log a
         WHERE NOT EXISTS (SELECT 1 FROM gateway_request_log r WHERE r.request_id = a.request_id);
        DROP TABLE api_key_auth_log;
    END IF;
END
$$;

-- The requests that ran (or tried to run) a data operation.
CREATE OR REPLACE VIEW gateway_operation_log AS
SELECT id, created_at, request_id, operation, table_name, client, method, path, status_code,
       duration_ms, row_count, status_code >= 400 AS error, message, details
  FROM gateway_request_log
 WHERE operation IS NOT NULL;

-- The requests that met an API-key decision, with its reason.
CREATE OR REPLACE VIEW api_key_auth_log AS
SELECT id, created_at, request_id, api_key_id, api_key_public_id, client AS client_name, method,
       path, required_rights, granted_rights, api_key_authenticated AS authenticated,
       api_key_authorized AS authorized, api_key_enforced AS enforced,
       api_key_auth_reason AS failure_reason, remote_addr, user_agent
  FROM gateway_request_log
 WHERE api_key_enforced IS NOT NULL;
