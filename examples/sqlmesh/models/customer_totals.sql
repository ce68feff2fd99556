MODEL (
  name dagctl_example.customer_totals,
  kind FULL,
  cron '@daily',
  grain customer_id
);

SELECT
  customer_id,
  SUM(amount) AS total_amount
FROM dagctl_example.orders
GROUP BY
  customer_id
