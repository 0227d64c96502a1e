-- Requests and operations, written in batches by the statistics actor, and the per-client and
-- per-table counters derived from them.
CREATE TABLE IF NOT EXISTS gateway_request_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    request_id text,
    client text,
    method text,
    path text,
    status_code integer NOT NULL,
    duration_ms double precision,
    api_key_public_id text,
    user_id text,
    company_id text,
    organization_id text,
    remote_addr text,
    user_agent text,
    cached boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS gateway_request_log_client_created ON gateway_request_log (client, created_at);

CREATE TABLE IF NOT EXISTS gateway_operation_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    request_id text,
    operation text NOT NULL,
    table_name text,
    client text,
    method text,
    path text,
    status_code integer NOT NULL,
    duration_ms double precision,
    row_count bigint,
    error boolean NOT NULL DEFAULT false,
    message text,
    details jsonb
);
CREATE INDEX IF NOT EXISTS gateway_operation_log_client_created ON gateway_operation_log (client, created_at);

CREATE TABLE IF NOT EXISTS client_statistics (
    client_name text PRIMARY KEY,
    total_requests bigint NOT NULL DEFAULT 0,
    successful_requests bigint NOT NULL DEFAULT 0,
    failed_requests bigint NOT NULL DEFAULT 0,
    total_cached_requests bigint NOT NULL DEFAULT 0,
    total_operations bigint NOT NULL DEFAULT 0,
    last_request_at timestamptz,
    last_operation_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS client_table_statistics (
    client_name text NOT NULL,
    table_name text NOT NULL,
    operation text NOT NULL,
    total_operations bigint NOT NULL DEFAULT 0,
    error_operations bigint NOT NULL DEFAULT 0,
    last_operation_at timestamptz,
    PRIMARY KEY (client_name, table_name, operation)
);
