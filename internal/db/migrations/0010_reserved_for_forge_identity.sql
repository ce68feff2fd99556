-- Placeholder, on the outbox branch only: version 0010 belongs to another branch of issue 9 (the forge-neutral
-- identity). Migrations may not have gaps, so this empty one lets 0011 run here; drop it when merging.
SELECT 1;
