-- The status a plan's check run and comment show, so that after a restart the bot re-reports only the plans
-- whose stored status is ahead of what the forge shows. NULL: never reported.
ALTER TABLE plans ADD COLUMN reported_status TEXT;
CREATE INDEX plans_unreported ON plans (status, reported_status);
