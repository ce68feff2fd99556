MODEL (
  name dagctl_example.top_customers,
  kind VIEW
);

SELECT
  customer_id,
  total_amount
FROM dagctl_example.customer_totals
WHERE
  total_amount >= 50
