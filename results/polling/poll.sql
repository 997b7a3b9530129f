\set uid random(1, 10000)
SELECT id, payload::text FROM notifications WHERE user_id = :uid AND id > 0 ORDER BY id LIMIT 100;
