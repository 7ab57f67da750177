-- seedq schema, version 8 (PostgreSQL only: SQLite's schema is unchanged).

-- A fetched per-PR page's outcome: its job done, guarded by its lease, and, only if it
-- was, the page's ETag stored (or forgotten when the page came without one). 1 when
-- written, 0 when the lease was taken over (nothing written then). The statements that
-- store a page's rows call it first and write the rows only on 1 (`postgres/data.rs`),
-- so a page's outcome, ETag and rows are one statement: one round trip, and no
-- transaction around them.
CREATE FUNCTION seedq_finish_page(p_id BIGINT, p_lease BIGINT, p_now BIGINT, p_key TEXT,
                                  p_etag TEXT, p_token TEXT, p_next_url TEXT)
RETURNS BIGINT LANGUAGE plpgsql AS $$
BEGIN
    UPDATE job_queue SET state = 'done', lease_owner = NULL, lease_expires_at = NULL,
        last_error = NULL, points = 0, updated_at = p_now
    WHERE id = p_id AND lease = p_lease AND state = 'running';
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    IF p_etag IS NULL THEN
        DELETE FROM page_etags WHERE page_key = p_key;
    ELSE
        INSERT INTO page_etags (page_key, etag, token, next_url, updated_at)
        VALUES (p_key, p_etag, p_token, p_next_url, p_now)
        ON CONFLICT (page_key) DO UPDATE SET etag = excluded.etag, token = excluded.token,
            next_url = excluded.next_url, updated_at = excluded.updated_at;
    END IF;
    RETURN 1;
END
$$;
