-- A counter that changes whenever something a cached caller depends on changes: a key
-- revoked, a user updated or deleted, a membership or a group changed. Every node reads
-- it per request (one primary-key row) and drops its cached callers when it moved, so
-- a logout on one node is a logout on all of them at once.
CREATE TABLE auth_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO auth_epoch (id, n) VALUES (1, 0);

CREATE FUNCTION auth_epoch_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE auth_epoch SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_keys_auth_epoch AFTER UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION auth_epoch_bump();
CREATE TRIGGER users_auth_epoch AFTER UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION auth_epoch_bump();
CREATE TRIGGER user_groups_auth_epoch AFTER INSERT OR UPDATE OR DELETE ON user_groups
    FOR EACH STATEMENT EXECUTE FUNCTION auth_epoch_bump();
CREATE TRIGGER groups_auth_epoch AFTER INSERT OR UPDATE OR DELETE ON groups
    FOR EACH STATEMENT EXECUTE FUNCTION auth_epoch_bump();
