// Command argo-validate validates Argo manifests the way `argo lint --offline` does, without the
// argo CLI: `go install` of the CLI fails because it embeds a UI build that is not in the module.
//
//	argo-validate [-namespace NS] FILE...
//
// Every WorkflowTemplate and ClusterWorkflowTemplate in FILE... is registered first, so
// templateRef/workflowTemplateRef resolve across files exactly as in offline lint. Then every
// Workflow, WorkflowTemplate, ClusterWorkflowTemplate and CronWorkflow is validated with
// validate.Opts{Lint: true}. Other kinds are counted as skipped.
//
// Output: one JSON line per finding {"file","kind","name","error"}, then one summary line.
// Exit status: 0 clean, 1 findings, 2 unreadable or unparseable input (the file is named on stderr).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	wfv1 "github.com/argoproj/argo-workflows/v4/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v4/util/logging"
	"github.com/argoproj/argo-workflows/v4/workflow/common"
	"github.com/argoproj/argo-workflows/v4/workflow/templateresolution"
	"github.com/argoproj/argo-workflows/v4/workflow/validate"
)

// finding is the JSON line contract read by pipelines/lint/checks/argo_validator.py.
type finding struct {
	File  string `json:"file"`
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	Error string `json:"error"`
}

type summary struct {
	Files     int `json:"files"`
	Validated int `json:"validated"`
	Skipped   int `json:"skipped"`
	Findings  int `json:"findings"`
}

// doc is one parsed Argo object; parseErr holds strict-decoding problems (unknown or duplicate
// fields), which argo lint reports instead of validating the object.
type doc struct {
	file     string
	kind     string
	name     string
	ns       string
	obj      metav1.Object
	parseErr error
}

type namespacedGetter struct {
	namespace string
	templates map[string]*wfv1.WorkflowTemplate
}

func (g *namespacedGetter) Get(_ context.Context, name string) (*wfv1.WorkflowTemplate, error) {
	if t, ok := g.templates[name]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("couldn't find workflow template %q in namespace %q", name, g.namespace)
}

type clusterGetter map[string]*wfv1.ClusterWorkflowTemplate

func (g clusterGetter) Get(_ context.Context, name string) (*wfv1.ClusterWorkflowTemplate, error) {
	if t, ok := g[name]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("couldn't find cluster workflow template %q", name)
}

type registry struct {
	namespaces map[string]*namespacedGetter
	cluster    clusterGetter
}

func (r *registry) namespace(ns string) *namespacedGetter {
	g, ok := r.namespaces[ns]
	if !ok {
		g = &namespacedGetter{namespace: ns, templates: map[string]*wfv1.WorkflowTemplate{}}
		r.namespaces[ns] = g
	}
	return g
}

// register returns an error for a duplicate name, which would make references ambiguous.
func (r *registry) register(d *doc) error {
	switch v := d.obj.(type) {
	case nil:
	case *wfv1.WorkflowTemplate:
		g := r.namespace(d.ns)
		if _, dup := g.templates[d.name]; dup {
			return fmt.Errorf("duplicate WorkflowTemplate %q in namespace %q", d.name, d.ns)
		}
		g.templates[d.name] = v
	case *wfv1.ClusterWorkflowTemplate:
		if _, dup := r.cluster[d.name]; dup {
			return fmt.Errorf("duplicate ClusterWorkflowTemplate %q", d.name)
		}
		r.cluster[d.name] = v
	}
	return nil
}

var argoKinds = map[string]bool{
	"Workflow": true, "WorkflowTemplate": true, "ClusterWorkflowTemplate": true, "CronWorkflow": true,
}

// splitDocuments uses the Kubernetes YAML reader, so `---` inside block scalars is not a separator.
func splitDocuments(data []byte) ([][]byte, error) {
	reader := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		chunk, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(chunk)) > 0 {
			docs = append(docs, chunk)
		}
	}
}

// load returns the Argo documents of one file and how many non-Argo documents it skipped.
func load(ctx context.Context, path, defaultNS string) ([]*doc, int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	chunks, err := splitDocuments(data)
	if err != nil {
		return nil, 0, err
	}
	var docs []*doc
	skipped := 0
	for i, chunk := range chunks {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name         string `json:"name"`
				GenerateName string `json:"generateName"`
				Namespace    string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(chunk, &head); err != nil {
			return nil, 0, fmt.Errorf("document %d: %w", i+1, err)
		}
		if head.Kind == "" {
			// A comment-only or null document; `kubectl apply` ignores these too.
			if isNullDocument(chunk) {
				continue
			}
			return nil, 0, fmt.Errorf("document %d: no kind", i+1)
		}
		if !argoKinds[head.Kind] {
			skipped++
			continue
		}
		d := &doc{file: path, kind: head.Kind, ns: head.Metadata.Namespace}
		if _, err := yaml.YAMLToJSONStrict(chunk); err != nil {
			// Strict YAML errors (e.g. a duplicate key) make ParseObjects drop the document, so
			// `argo lint` says nothing about it; we report it.
			d.parseErr = err
			d.name = firstNonEmpty(head.Metadata.Name, head.Metadata.GenerateName, fmt.Sprintf("document #%d", i+1))
		} else {
			results := common.ParseObjects(ctx, chunk, true)
			if len(results) != 1 || results[0].Object == nil {
				return nil, 0, fmt.Errorf("document %d (%s): not a Kubernetes object", i+1, head.Kind)
			}
			d.obj, d.parseErr = results[0].Object, results[0].Err
			d.name = objectName(d.obj, i)
		}
		if d.ns == "" {
			d.ns = defaultNS
		}
		docs = append(docs, d)
	}
	return docs, skipped, nil
}

func isNullDocument(chunk []byte) bool {
	var v any
	return yaml.Unmarshal(chunk, &v) == nil && v == nil
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func objectName(obj metav1.Object, index int) string {
	switch {
	case obj.GetName() != "":
		return obj.GetName()
	case obj.GetGenerateName() != "":
		return obj.GetGenerateName()
	default:
		return fmt.Sprintf("document #%d", index+1)
	}
}

func validateDoc(ctx context.Context, r *registry, d *doc) error {
	ns := r.namespace(d.ns)
	opts := validate.Opts{Lint: true}
	switch v := d.obj.(type) {
	case *wfv1.Workflow:
		return validate.Workflow(ctx, ns, r.cluster, v, nil, opts)
	case *wfv1.WorkflowTemplate:
		return validate.WorkflowTemplate(ctx, ns, r.cluster, v, nil, opts)
	case *wfv1.ClusterWorkflowTemplate:
		return validate.ClusterWorkflowTemplate(ctx, ns, r.cluster, v, nil, opts)
	case *wfv1.CronWorkflow:
		return validate.CronWorkflow(ctx, ns, r.cluster, v, nil)
	}
	return fmt.Errorf("unexpected kind %s", d.kind)
}

// Compile-time proof that the in-memory getters satisfy the resolver's interfaces.
var (
	_ templateresolution.WorkflowTemplateNamespacedGetter = (*namespacedGetter)(nil)
	_ templateresolution.ClusterWorkflowTemplateGetter    = clusterGetter(nil)
)

func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("argo-validate", flag.ContinueOnError)
	flags.SetOutput(stderr)
	defaultNS := flags.String("namespace", "default", "namespace of objects that do not set one")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: argo-validate [-namespace NS] FILE...")
		return 2
	}

	// Argo logs through a logger it expects in the context; keep it quiet so stdout stays JSON.
	ctx := logging.WithLogger(context.Background(), logging.NewSlogLoggerCustom(logging.Error, logging.Text, stderr))

	var docs []*doc
	sum := summary{Files: flags.NArg()}
	for _, path := range flags.Args() {
		fileDocs, skipped, err := load(ctx, path, *defaultNS)
		if err != nil {
			fmt.Fprintf(stderr, "argo-validate: %s: %v\n", path, err)
			return 2
		}
		docs = append(docs, fileDocs...)
		sum.Skipped += skipped
	}

	out := json.NewEncoder(stdout)
	report := func(d *doc, err error) {
		sum.Findings++
		_ = out.Encode(finding{File: d.file, Kind: d.kind, Name: d.name, Error: oneLine(err)})
	}

	reg := &registry{namespaces: map[string]*namespacedGetter{}, cluster: clusterGetter{}}
	for _, d := range docs {
		if err := reg.register(d); err != nil {
			report(d, err)
		}
	}
	for _, d := range docs {
		sum.Validated++
		if d.parseErr != nil {
			report(d, d.parseErr)
			continue
		}
		if err := validateDoc(ctx, reg, d); err != nil {
			report(d, err)
		}
	}
	_ = json.NewEncoder(stdout).Encode(map[string]summary{"summary": sum})
	if sum.Findings > 0 {
		return 1
	}
	return 0
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
