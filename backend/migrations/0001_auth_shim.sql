-- Supabase compatibility shim. A Supabase project already has the roles, the auth schema,
-- auth.users and auth.uid()/auth.role()/auth.jwt(): there every block below is a no-op.
-- On plain PostgreSQL (embedded mode, tests, self-hosting) it creates a compatible minimum so
-- the same RLS policies work everywhere.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS auth;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;

DO $$
BEGIN
    IF to_regclass('auth.users') IS NULL THEN
        -- The columns of Supabase's auth.users that Nojoin reads or writes.
        CREATE TABLE auth.users (
            instance_id        uuid,
            id                 uuid PRIMARY KEY,
            aud                varchar(255),
            role               varchar(255),
            email              varchar(255),
            encrypted_password varchar(255),
            email_confirmed_at timestamptz,
            recovery_sent_at   timestamptz,
            last_sign_in_at    timestamptz,
            raw_app_meta_data  jsonb,
            raw_user_meta_data jsonb,
            created_at         timestamptz,
            updated_at         timestamptz,
            phone              text,
            is_anonymous       boolean NOT NULL DEFAULT false
        );
        CREATE UNIQUE INDEX users_email_key ON auth.users (lower(email));
        ALTER TABLE auth.users ENABLE ROW LEVEL SECURITY;
    END IF;

    IF to_regprocedure('auth.uid()') IS NULL THEN
        -- Same definition as Supabase: the `sub` claim of the request's JWT.
        CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $f$
            SELECT coalesce(
                nullif(current_setting('request.jwt.claim.sub', true), ''),
                nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
            )::uuid
        $f$;
    END IF;
    IF to_regprocedure('auth.role()') IS NULL THEN
        CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $f$
            SELECT coalesce(
                nullif(current_setting('request.jwt.claim.role', true), ''),
                nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
            )::text
        $f$;
    END IF;
    IF to_regprocedure('auth.jwt()') IS NULL THEN
        CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $f$
            SELECT coalesce(
                nullif(current_setting('request.jwt.claim', true), ''),
                nullif(current_setting('request.jwt.claims', true), '')
            )::jsonb
        $f$;
    END IF;
END
$$;

GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.jwt() TO anon, authenticated, service_role;
