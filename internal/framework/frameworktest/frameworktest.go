// Package frameworktest holds a second framework for tests while dbt's adapter does not exist (issue 12): the
// real sqlmesh framework under the name dbt, with dbt's meanings. It takes only --start and --end and has no
// change categories, so the bot's framework-neutral rules (flags refused at command time, nothing refused as
// uncategorised) can be tested end to end with the real sqlmesh doing the work.
package frameworktest

import (
	"io"

	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/framework/sqlmesh"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

// DBTLike is sqlmesh run as if it were a framework without categories and with fewer flags, named dbt.
type DBTLike struct {
	sqlmesh.Framework
}

var _ framework.Framework = DBTLike{}

// NewDBTLike runs sqlmesh with python (see sqlmesh.New).
func NewDBTLike(python string) DBTLike { return DBTLike{Framework: sqlmesh.New(python)} }

func (DBTLike) Name() repoconfig.Framework { return repoconfig.DBT }

// Categorizes: dbt has no change categories.
func (DBTLike) Categorizes() bool { return false }

// Flags: dbt has no restatement and no forward-only plans.
func (DBTLike) Flags() []plan.Flag { return []plan.Flag{plan.FlagStart, plan.FlagEnd} }

// ParseResult is sqlmesh's, the tool named as this framework.
func (f DBTLike) ParseResult(stdout io.Reader) (plan.Summary, error) {
	s, err := f.Framework.ParseResult(stdout)
	s.Tool = string(repoconfig.DBT)
	return s, err
}
