-- A request log row repeats, request after request, what the caller and the route were: the
-- client, method, path, operation and table, the API key and its decision, the peer address and
-- user agent. Those columns are most of what a row costs to write (PostgreSQL parses and checks
-- every value of every row) and to store. They move to gateway_request_shapes, one row per
-- distinct combination, and each request row in gateway_requests keeps only what differs per
-- request and the id of its shape. gateway_request_log becomes a view joining the two, with the
-- columns (and column order) the table had, so every query written against it, and against the
-- gateway_operation_log and api_key_auth_log views of it, still works.
--
-- A shape's id is chosen by the writer: the first 63 bits of a SHA-256 of its values (so every
-- instance picks the same id for the same shape and may insert it again without harm, with
-- ON CONFLICT DO NOTHING). Shapes of rows moved here from the old table get negative ids.
CREATE TABLE IF NOT EXISTS gateway_request_shapes (
    shape_id bigint PRIMARY KEY,
    client text,
    method text,
    path text,
    operation text,
    table_name text,
    cached boolean NOT NULL DEFAULT false,
    api_key_public_id text,
    api_key_id bigint,
    api_key_enforced boolean,
    api_key_authenticated boolean,
    api_key_authorized boolean,
    api_key_auth_reason text,
    required_rights text[],
    granted_rights text[],
    remote_addr text,
    user_agent text,
    first_seen_at timestamptz NOT NULL DEFAULT now()
);

-- Appended to in time order, never updated: no primary key index (`id` orders rows), a BRIN
-- index for time ranges, ids taken from the sequence 1,000 at a time.
CREATE TABLE IF NOT EXISTS gateway_requests (
    id bigint GENERATED ALWAYS AS IDENTITY (CACHE 1000),
    created_at timestamptz NOT NULL DEFAULT now(),
    request_id text,
    shape_id bigint NOT NULL,
    status_code integer NOT NULL,
    duration_ms double precision,
    row_count bigint,
    message text,
    details jsonb,
    user_id text,
    company_id text,
    organization_id text
);
CREATE INDEX IF NOT EXISTS gateway_requests_created_brin ON gateway_requests USING brin (created_at);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class
               WHERE oid = to_regclass('gateway_request_log') AND relkind = 'r') THEN
        DROP VIEW IF EXISTS gateway_operation_log;
        DROP VIEW IF EXISTS api_key_auth_log;
        ALTER TABLE gateway_request_log RENAME TO gateway_request_log_moving;
        -- A shape's values as one text (a row's text form tells NULL from ''), so that rows
        -- find their shape with a hash join.
        CREATE TEMPORARY TABLE moved_shapes ON COMMIT DROP AS
        SELECT -row_number() OVER (ORDER BY s.k) AS shape_id, s.*
          FROM (SELECT DISTINCT ROW(client, method, path, operation, table_name, cached,
                       api_key_public_id, api_key_id, api_key_enforced, api_key_authenticated,
                       api_key_authorized, api_key_auth_reason, required_rights, granted_rights,
                       remote_addr, user_agent)::text AS k,
                       client, method, path, operation, table_name, cached, api_key_public_id,
                       api_key_id, api_key_enforced, api_key_authenticated, api_key_authorized,
                       api_key_auth_reason, required_rights, granted_rights, remote_addr,
                       user_agent
                  FROM gateway_request_log_moving) s;
        INSERT INTO gateway_request_shapes (shape_id, client, method, path, operation, table_name,
               cached, api_key_public_id, api_key_id, api_key_enforced, api_key_authenticated,
               api_key_authorized, api_key_auth_reason, required_rights, granted_rights,
               remote_addr, user_agent)
        SELECT shape_id, client, method, path, operation, table_name, cached, api_key_public_id,
               api_key_id, api_key_enforced, api_key_authenticated, api_key_authorized,
               api_key_auth_reason, required_rights, granted_rights, remote_addr, user_agent
          FROM moved_shapes
            ON CONFLICT (shape_id) DO NOTHING;
        -- The rows keep their ids; the sequence continues after them.
        INSERT INTO gateway_requests (id, created_at, request_id, shape_id, status_code,
               duration_ms, row_count, message, details, user_id, company_id, organization_id)
        OVERRIDING SYSTEM VALUE
        SELECT l.id, l.created_at, l.request_id, s.shape_id, l.status_code, l.duration_ms,
               l.row_count, l.message, l.details, l.user_id, l.company_id, l.organization_id
          FROM gateway_request_log_moving l
          JOIN moved_shapes s
            ON s.k = ROW(l.client, l.method, l.path, l.operation, l.table_name, l.cached,
                         l.api_key_public_id, l.api_key_id, l.api_key_enforced,
                         l.api_key_authenticated, l.api_key_authorized, l.api_key_auth_reason,
                         l.required_rights, l.granted_rights, l.remote_addr, l.user_agent)::text
         ORDER BY l.id;
        PERFORM setval(pg_get_serial_sequence('gateway_requests', 'id'), max(id))
           FROM gateway_requests HAVING max(id) IS NOT NULL;
        DROP TABLE gateway_request_log_moving;
    END IF;
END
$$;

-- One row per request, as the table was (a row whose shape was deleted keeps its own columns).
CREATE OR REPLACE VIEW gateway_request_log AS
SELECT r.id, r.created_at, r.request_id, s.client, s.method, s.path, r.status_code,
       r.duration_ms, s.api_key_public_id, r.user_id, r.company_id, r.organization_id,
       s.remote_addr, s.user_agent, s.cached, s.operation, s.table_name, r.row_count, r.message,
       r.details, s.api_key_id, s.api_key_enforced, s.api_key_authenticated,
       s.api_key_authorized, s.api_key_auth_reason, s.required_rights, s.granted_rights
  FROM gateway_requests r
  LEFT JOIN gateway_request_shapes s ON s.shape_id = r.shape_id;

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
