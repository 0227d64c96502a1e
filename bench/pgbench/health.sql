-- The trailing \set makes pgbench read the clock again after the result
-- arrives; without it a reply that lands within the same scheduling slice
-- is logged with a latency of 0 and skews the percentiles.
SELECT 1;
\set done 1
