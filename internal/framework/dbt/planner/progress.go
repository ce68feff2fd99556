package planner

import (
	"encoding/json"
	"strings"
)

// Progress is one node an apply's dbt command finished, from dbt's JSON log (`--log-format json`):
// Index of Total nodes of that command.
type Progress struct {
	UniqueID     string `json:"unique_id"`
	ResourceType string `json:"resource_type,omitempty"`
	// Status is dbt's word for the node's end: success, error, pass, fail, warn, skipped, no-op.
	Status string `json:"status"`
	Index  int    `json:"index"` // 1-based
	Total  int    `json:"total"`
}

// resultEvents are dbt's events (dbt-core 1.11, events/types.py) that report a node done, with index and
// total; LogTestResult counts its total as num_models. LogStartLine (a node started) and NodeFinished (debug
// level, not printed at dbt's default level) are not progress.
var resultEvents = map[string]bool{
	"LogModelResult": true, "LogSeedResult": true, "LogSnapshotResult": true, "LogTestResult": true,
	"LogFunctionResult": true, "LogNodeNoOpResult": true, "SkippingDetails": true, "LogSkipBecauseError": true,
}

type logLine struct {
	Info struct {
		Name string `json:"name"`
	} `json:"info"`
	Data struct {
		Index     int    `json:"index"`
		Total     int    `json:"total"`
		NumModels int    `json:"num_models"`
		Status    string `json:"status"`
		NodeName  string `json:"node_name"`
		Relation  string `json:"relation"`
		NodeInfo  struct {
			UniqueID     string `json:"unique_id"`
			ResourceType string `json:"resource_type"`
			NodeStatus   string `json:"node_status"`
		} `json:"node_info"`
	} `json:"data"`
}

// ParseProgress reads one line of an apply's output; false for every line that is not a node's result.
func ParseProgress(line string) (Progress, bool) {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "{") || !strings.Contains(line, `"info"`) {
		return Progress{}, false
	}
	var l logLine
	if json.Unmarshal([]byte(line), &l) != nil || !resultEvents[l.Info.Name] {
		return Progress{}, false
	}
	d := l.Data
	p := Progress{UniqueID: d.NodeInfo.UniqueID, ResourceType: d.NodeInfo.ResourceType, Index: d.Index, Total: d.Total}
	if l.Info.Name == "LogTestResult" {
		p.Total = d.NumModels
	}
	switch {
	case l.Info.Name == "SkippingDetails" || l.Info.Name == "LogSkipBecauseError":
		p.Status = "skipped"
	case l.Info.Name == "LogNodeNoOpResult":
		p.Status = "no-op"
	case d.NodeInfo.NodeStatus != "":
		p.Status = d.NodeInfo.NodeStatus
	default:
		p.Status = strings.ToLower(d.Status)
	}
	if p.UniqueID == "" {
		p.UniqueID = firstNonEmpty(d.NodeName, d.Relation)
	}
	if p.UniqueID == "" || p.Index < 1 || p.Total < p.Index {
		return Progress{}, false
	}
	return p, true
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
