// Package handlertest holds the bot's handler tests: bot.New and (*Bot).Handle against memforge (an in-process
// forge with real state), the replay executor (job output captured from the real sqlmesh, in
// testdata/replay) and a real SQLite store. They run in milliseconds and without sqlmesh;
// `DAGCTL_REPLAY_CAPTURE=1 go test ./internal/handlertest/` (part of `make golden`) records the captures again
// with the real sqlmesh.
package handlertest
