-- Supabase Storage compatibility shim: storage.buckets, storage.objects and
-- storage.foldername() when they do not exist (plain PostgreSQL). On a Supabase project the
-- real schema is used and this is a no-op.

CREATE SCHEMA IF NOT EXISTS storage;
GRANT USAGE ON SCHEMA storage TO anon, authenticated, service_role;

DO $$
BEGIN
    IF to_regclass('storage.buckets') IS NULL THEN
        CREATE TABLE storage.buckets (
            id              text PRIMARY KEY,
            name            text NOT NULL UNIQUE,
            owner           uuid,
            public          boolean NOT NULL DEFAULT false,
            file_size_limit bigint,
            created_at      timestamptz NOT NULL DEFAULT now(),
            updated_at      timestamptz NOT NULL DEFAULT now()
        );
        ALTER TABLE storage.buckets ENABLE ROW LEVEL SECURITY;
        GRANT ALL ON storage.buckets TO service_role;
    END IF;
    IF to_regclass('storage.objects') IS NULL THEN
        CREATE TABLE storage.objects (
            id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            bucket_id  text REFERENCES storage.buckets (id),
            name       text,
            owner      uuid,
            metadata   jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (bucket_id, name)
        );
        ALTER TABLE storage.objects ENABLE ROW LEVEL SECURITY;
        GRANT SELECT, INSERT, UPDATE, DELETE ON storage.objects TO authenticated;
        GRANT ALL ON storage.objects TO service_role;
    END IF;
    IF to_regprocedure('storage.foldername(text)') IS NULL THEN
        -- Same as Supabase: the folder parts of an object name ('a/b/c.txt' -> {a,b}).
        CREATE FUNCTION storage.foldername(name text) RETURNS text[]
            LANGUAGE plpgsql IMMUTABLE AS $f$
        DECLARE
            _parts text[];
        BEGIN
            SELECT string_to_array(name, '/') INTO _parts;
            RETURN _parts[1:array_length(_parts, 1) - 1];
        END
        $f$;
        GRANT EXECUTE ON FUNCTION storage.foldername(text) TO anon, authenticated, service_role;
    END IF;
END
$$;
