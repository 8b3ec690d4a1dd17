// Command chart-template renders a Helm chart directory the way `helm template --include-crds` prints it: the
// chart's CRDs, then its manifests in Helm's install order, then its hooks. The lab builds Envoy Gateway's release
// install.yaml with it (tests/lab/mirror/build.py): upstream runs
// `helm template --set createNamespace=true eg charts/gateway-helm --include-crds --namespace envoy-gateway-system`.
//
//	chart-template RELEASE CHART_DIR NAMESPACE [key=value ...]   (each key=value as helm's --set)
package main

import (
	"fmt"
	"os"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/strvals"
)

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: chart-template RELEASE CHART_DIR NAMESPACE [key=value ...]")
		os.Exit(2)
	}
	if err := render(os.Args[1], os.Args[2], os.Args[3], os.Args[4:]); err != nil {
		fmt.Fprintln(os.Stderr, "chart-template:", err)
		os.Exit(1)
	}
}

func render(release, dir, namespace string, sets []string) error {
	chrt, err := loader.Load(dir)
	if err != nil {
		return err
	}
	vals := map[string]interface{}{}
	for _, set := range sets {
		if err := strvals.ParseInto(set, vals); err != nil {
			return fmt.Errorf("--set %s: %w", set, err)
		}
	}
	if err := chartutil.ProcessDependenciesWithMerge(chrt, vals); err != nil {
		return err
	}
	caps := chartutil.DefaultCapabilities.Copy()
	options := chartutil.ReleaseOptions{Name: release, Namespace: namespace, Revision: 1, IsInstall: true}
	values, err := chartutil.ToRenderValues(chrt, vals, options, caps)
	if err != nil {
		return err
	}
	files, err := engine.Render(chrt, values)
	if err != nil {
		return err
	}
	for name := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			delete(files, name)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, caps.APIVersions, releaseutil.InstallOrder)
	if err != nil {
		return err
	}
	var out strings.Builder
	for _, crd := range chrt.CRDObjects() {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", crd.Filename, string(crd.File.Data))
	}
	for _, m := range manifests {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	for _, h := range hooks {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", h.Path, h.Manifest)
	}
	_, err = os.Stdout.WriteString(out.String())
	return err
}
