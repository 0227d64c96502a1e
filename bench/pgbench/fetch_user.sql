-- The trailing \set makes pgbench read the clock again after the result
-- arrives; without it a reply that lands within the same scheduling slice
-- is logged with a latency of 0 and skews the percentiles.
\set uid random(1, 10000)
SELECT * FROM events WHERE user_id = :uid LIMIT 10;
\set done 1
