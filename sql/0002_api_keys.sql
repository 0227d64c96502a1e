-- API keys: `ath_{public_id}.{secret}`; only a salted hash of the secret is stored.
CREATE TABLE IF NOT EXISTS api_keys (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    api_keys_id uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    public_id text NOT NULL UNIQUE,
    name text NOT NULL,
    description text,
    client_name text,
    key_salt text NOT NULL,
    key_hash text NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    expires_at timestamptz,
    rate_limit_per_minute integer CHECK (rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0),
    last_used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_client_name ON api_keys (client_name);

-- Right strings such as `users.read`, `*.read`, `gateway.query`.
CREATE TABLE IF NOT EXISTS api_key_rights (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    description text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS api_key_right_grants (
    api_key_id bigint NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    right_id bigint NOT NULL REFERENCES api_key_rights (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, right_id)
);

-- Global enforcement: at most one row. The first server to start seeds it from its config
-- (api_keys.enforce); the admin API changes it afterwards. Without a row, config decides.
CREATE TABLE IF NOT EXISTS api_key_config (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    enforce_api_keys boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Per-client override of the global setting.
CREATE TABLE IF NOT EXISTS api_key_client_config (
    client_name text PRIMARY KEY,
    enforce_api_keys boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every authentication decision, written in batches.
CREATE TABLE IF NOT EXISTS api_key_auth_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    request_id text,
    api_key_id bigint REFERENCES api_keys (id) ON DELETE SET NULL,
    api_key_public_id text,
    client_name text,
    method text,
    path text,
    required_rights jsonb,
    granted_rights jsonb,
    authenticated boolean NOT NULL,
    authorized boolean NOT NULL,
    enforced boolean NOT NULL,
    failure_reason text,
    remote_addr text,
    user_agent text
);
CREATE INDEX IF NOT EXISTS api_key_auth_log_created_at ON api_key_auth_log (created_at);
