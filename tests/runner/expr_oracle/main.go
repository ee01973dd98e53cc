// Evaluates expr-lang expressions exactly as Argo does for `{{= ... }}` (util/template
// expressionReplaceCore: expr.Compile with expr.Env(env.GetFuncMap(...)), then expr.Run), so the
// runner's Python evaluator can be compared with the real engine. Built by
// tests/runner/test_expr_oracle.py against the argo-workflows version tools/argo-validate pins.
//
// stdin: one JSON object per line, {"expr": "...", "env": {...}}
// stdout: one JSON object per line, {"value": ...} or {"error": "..."}
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/argoproj/argo-workflows/v4/util/expr/env"
	"github.com/expr-lang/expr"
)

type request struct {
	Expr string         `json:"expr"`
	Env  map[string]any `json:"env"`
}

func evaluate(r request) (out map[string]any) {
	defer func() {
		if p := recover(); p != nil {
			out = map[string]any{"error": fmt.Sprint(p)}
		}
	}()
	e := env.GetFuncMap(r.Env)
	program, err := expr.Compile(r.Expr, expr.Env(e))
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	value, err := expr.Run(program, e)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	return map[string]any{"value": value}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	for in.Scan() {
		var r request
		if err := json.Unmarshal(in.Bytes(), &r); err != nil {
			panic(err)
		}
		line, err := json.Marshal(evaluate(r))
		if err != nil {
			line, _ = json.Marshal(map[string]any{"error": "marshal: " + err.Error()})
		}
		fmt.Println(string(line))
	}
}
