-- The trailing \set makes pgbench read the clock again after the result
-- arrives; without it a reply that lands within the same scheduling slice
-- is logged with a latency of 0 and skews the percentiles.
\set id random(1, 100)
SELECT * FROM events WHERE id = :id LIMIT 1;
\set done 1
