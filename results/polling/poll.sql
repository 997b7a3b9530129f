\set uid random(1, 10000)
\set after 1000000000
\set page 100
SELECT id, payload::text FROM notifications WHERE user_id = :uid AND id > :after ORDER BY id LIMIT :page;
