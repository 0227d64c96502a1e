-- The client catalog: database-managed clients, merged with config.yaml clients at start.
-- A name is unique among live (not deleted) rows, whatever its case.
CREATE TABLE IF NOT EXISTS athena_clients (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_name text NOT NULL CHECK (client_name ~ '^[a-z0-9_-]{1,63}$'),
    description text,
    backend text NOT NULL DEFAULT 'postgres',
    pg_uri text,
    pg_uri_env_var text,
    source text NOT NULL DEFAULT 'admin' CHECK (source IN ('config', 'admin')),
    is_active boolean NOT NULL DEFAULT true,
    is_frozen boolean NOT NULL DEFAULT false,
    frozen_reason text,
    frozen_at timestamptz,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    last_seen_at timestamptz,
    -- Clients from config.yaml keep their connection settings there; the others name theirs.
    CHECK (source = 'config' OR pg_uri IS NOT NULL OR pg_uri_env_var IS NOT NULL)
);
CREATE UNIQUE INDEX IF NOT EXISTS athena_clients_live_name
    ON athena_clients (lower(client_name)) WHERE deleted_at IS NULL;
