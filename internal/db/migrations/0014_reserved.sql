-- Reserved: migration 0014 belongs to another branch of issue 10 (merged alongside 0015_retention). Versions
-- have no gaps, so this branch holds the number with a no-op; the merge replaces this file with that one.
SELECT 1;
