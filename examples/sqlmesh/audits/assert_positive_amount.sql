AUDIT (
  name assert_positive_amount
);

/* An audit passes when it returns no rows. */
SELECT
  *
FROM @this_model
WHERE
  amount < 0
