package deploy

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/openbyok/byok/config"
)

const chartDir = "helm/byok"

// siteValues are the values the chart has no default for: the ones a
// platform team sets for its own Azure tenant and database.
func siteValues() map[string]any {
	return map[string]any{
		"workloadIdentity": map[string]any{"clientId": "aaaaaaaa-1111-2222-3333-444444444444"},
		"config": map[string]any{
			"store": map[string]any{"postgres": "host=byok-db.postgres.database.azure.com dbname=byok user=byok sslmode=verify-full"},
			"platformKey": map[string]any{"azure": map[string]any{
				"keyId": "https://contoso-byok.managedhsm.azure.net/keys/platform-root",
			}},
			"azure": map[string]any{
				"tenantId": "11111111-2222-3333-4444-555555555555",
				"clientId": "bbbbbbbb-1111-2222-3333-444444444444",
			},
		},
	}
}

// merge returns base with over laid on it, maps merged key by key.
func merge(base, over map[string]any) map[string]any {
	out := maps.Clone(base)
	for k, v := range over {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = merge(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// rendered is the chart's output: every object's manifest by kind/name.
type rendered struct {
	docs map[string]string // "Kind/name" -> YAML
}

func (r rendered) keys() []string { return slices.Sorted(maps.Keys(r.docs)) }

// kinds lists the kinds rendered, sorted, once each.
func (r rendered) kinds() []string {
	var ks []string
	for k := range r.docs {
		kind, _, _ := strings.Cut(k, "/")
		if !slices.Contains(ks, kind) {
			ks = append(ks, kind)
		}
	}
	sort.Strings(ks)
	return ks
}

// one decodes the only object of a kind into v, strictly: a field the
// Kubernetes type does not have (a misspelt or misplaced one in a
// template) is an error.
func (r rendered) one(t *testing.T, kind string, v any) string {
	t.Helper()
	var found []string
	for k := range r.docs {
		if strings.HasPrefix(k, kind+"/") {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s (%v); want one", len(found), kind, found)
	}
	if err := yaml.UnmarshalStrict([]byte(r.docs[found[0]]), v); err != nil {
		t.Fatalf("%s: %v\n%s", found[0], err, r.docs[found[0]])
	}
	return found[0]
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// render renders the chart as `helm template byok deploy/helm/byok -n byok`
// would, with vals over the chart's values.yaml.
func render(t *testing.T, vals map[string]any) (rendered, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := util.ToRenderValues(chrt, vals, common.ReleaseOptions{Name: "byok", Namespace: "byok", IsInstall: true, Revision: 1}, nil)
	if err != nil {
		return rendered{}, err
	}
	files, err := engine.Render(chrt, top)
	if err != nil {
		return rendered{}, err
	}
	r := rendered{docs: map[string]string{}}
	for name, content := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		for _, doc := range docSep.Split(content, -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name      string `json:"name"`
					Namespace string `json:"namespace"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s does not render YAML: %v\n%s", name, err, doc)
			}
			if meta.APIVersion == "" || meta.Kind == "" || meta.Metadata.Name == "" {
				t.Fatalf("%s renders an object without apiVersion, kind or name:\n%s", name, doc)
			}
			key := meta.Kind + "/" + meta.Metadata.Name
			if _, dup := r.docs[key]; dup {
				t.Fatalf("%s rendered twice", key)
			}
			r.docs[key] = doc
		}
	}
	return r, nil
}

func mustRender(t *testing.T, vals map[string]any) rendered {
	t.Helper()
	r, err := render(t, vals)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The chart has no default for the values that name the platform's own
// database, key and identity, and says which are missing.
func TestChartRequiresSiteValues(t *testing.T) {
	_, err := render(t, nil)
	if err == nil {
		t.Fatal("the chart rendered with no database, platform key or identity set")
	}
	for _, want := range []string{"config.store.postgres", "config.platformKey.keyId", "config.azure.tenantId", "workloadIdentity.clientId"} {
		vals := siteValues()
		switch want {
		case "config.store.postgres":
			vals = merge(vals, map[string]any{"config": map[string]any{"store": map[string]any{"postgres": ""}}})
		case "config.platformKey.keyId":
			vals = merge(vals, map[string]any{"config": map[string]any{"platformKey": map[string]any{"azure": map[string]any{"keyId": ""}}}})
		case "config.azure.tenantId":
			vals = merge(vals, map[string]any{"config": map[string]any{"azure": map[string]any{"tenantId": ""}}})
		case "workloadIdentity.clientId":
			vals = merge(vals, map[string]any{"workloadIdentity": map[string]any{"clientId": ""}})
		}
		if _, err := render(t, vals); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("without %s: err = %v; want one naming %s", want, err, want)
		}
	}
}

// The objects the chart creates by default, and each one's settings.
func TestChartDefaults(t *testing.T) {
	r := mustRender(t, siteValues())
	t.Logf("objects: %v", r.keys())
	if got, want := r.kinds(), []string{"ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"}; !slices.Equal(got, want) {
		t.Errorf("kinds %v; want %v", got, want)
	}
	if len(r.docs) != 5 {
		t.Errorf("%d objects %v; want one of each kind", len(r.docs), r.keys())
	}

	var d appsv1.Deployment
	r.one(t, "Deployment", &d)
	checkDeployment(t, d, 3)

	// The Service reaches the pods' http port.
	var svc corev1.Service
	r.one(t, "Service", &svc)
	if !maps.Equal(svc.Spec.Selector, d.Spec.Selector.MatchLabels) {
		t.Errorf("Service selector %v; want the Deployment's %v", svc.Spec.Selector, d.Spec.Selector.MatchLabels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("Service ports %+v; want one, to target port http", svc.Spec.Ports)
	}

	// The PodDisruptionBudget keeps all but one replica up.
	var pdb policyv1.PodDisruptionBudget
	r.one(t, "PodDisruptionBudget", &pdb)
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.String() != "1" || pdb.Spec.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget maxUnavailable %v minAvailable %v; want maxUnavailable 1", pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable)
	}
	if pdb.Spec.Selector == nil || !maps.Equal(pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("PodDisruptionBudget selector %v; want the Deployment's %v", pdb.Spec.Selector, d.Spec.Selector.MatchLabels)
	}

	// The ServiceAccount the pods run as carries the workload identity.
	var sa corev1.ServiceAccount
	r.one(t, "ServiceAccount", &sa)
	if sa.Name != d.Spec.Template.Spec.ServiceAccountName {
		t.Errorf("ServiceAccount %s; the pods run as %s", sa.Name, d.Spec.Template.Spec.ServiceAccountName)
	}
	if got := sa.Annotations["azure.workload.identity/client-id"]; got != "aaaaaaaa-1111-2222-3333-444444444444" {
		t.Errorf("ServiceAccount annotation azure.workload.identity/client-id = %q; want workloadIdentity.clientId", got)
	}

	// The configuration: mounted, secret-free, and one byok serve accepts.
	var cm corev1.ConfigMap
	r.one(t, "ConfigMap", &cm)
	if len(cm.BinaryData) != 0 || len(cm.Data) != 1 || cm.Data["config.yaml"] == "" {
		t.Fatalf("ConfigMap data keys %v; want config.yaml alone", slices.Collect(maps.Keys(cm.Data)))
	}
	mounted := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == cm.Name {
			for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
				mounted = mounted || (m.Name == v.Name && m.MountPath == "/etc/byok" && m.ReadOnly)
			}
		}
	}
	if !mounted {
		t.Errorf("ConfigMap %s is not mounted read-only at /etc/byok", cm.Name)
	}
	checkConfig(t, cm.Data["config.yaml"], map[string]string{
		"store.postgres":               "host=byok-db.postgres.database.azure.com dbname=byok user=byok sslmode=verify-full",
		"platform_key.azure.key_id":    "https://contoso-byok.managedhsm.azure.net/keys/platform-root",
		"platform_key.azure.tenant_id": "11111111-2222-3333-4444-555555555555",
		"platform_key.azure.credential.workload_identity.client_id":  "aaaaaaaa-1111-2222-3333-444444444444",
		"platform_key.azure.credential.workload_identity.token_file": "/var/run/secrets/azure/tokens/azure-identity-token",
		"azure.tenant_id": "11111111-2222-3333-4444-555555555555",
		"azure.client_id": "bbbbbbbb-1111-2222-3333-444444444444",
		"azure.credential.workload_identity.token_file": "/var/run/secrets/azure/tokens/azure-identity-token",
		"listen":                  ":8080",
		"console.secure_cookies":  "true",
		"log.level":               "info",
		"log.format":              "json",
		"azure.workload_identity": "<missing>",
	})

	// By default exactly the production shape: these sections, no other.
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &raw); err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(maps.Keys(raw)), []string{"azure", "console", "listen", "log", "platform_key", "store", "version"}; !slices.Equal(got, want) {
		t.Errorf("config.yaml sections %v; want %v", got, want)
	}

	checkNoSecrets(t, r)
}

// Values override replicas, add the ServiceMonitor, take the database
// password from a Secret the platform manages, and tune the keyring.
func TestChartOverrides(t *testing.T) {
	r := mustRender(t, merge(siteValues(), map[string]any{
		"replicaCount":      5,
		"serviceMonitor":    map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}},
		"postgres":          map[string]any{"passwordSecret": map[string]any{"name": "byok-db", "key": "pw"}},
		"extraVolumes":      []any{map[string]any{"name": "pg-client", "secret": map[string]any{"secretName": "byok-pg-client", "defaultMode": 0o400}}},
		"extraVolumeMounts": []any{map[string]any{"name": "pg-client", "mountPath": "/etc/byok-pg", "readOnly": true}},
		"config": map[string]any{
			"listen":  ":9090",
			"keyring": map[string]any{"check_interval": "30s", "max_staleness": "30m"},
			"jobs":    map[string]any{"batch_size": 500},
			"azure": map[string]any{
				"clientId":               "", // defaults to workloadIdentity.clientId
				"workloadIdentityIssuer": "https://westeurope.oic.prod-aks.azure.com/11111111-2222-3333-4444-555555555555/abcdef/",
			},
		},
	}))
	t.Logf("objects: %v", r.keys())
	if got, want := r.kinds(), []string{"ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount", "ServiceMonitor"}; !slices.Equal(got, want) {
		t.Errorf("kinds %v; want %v", got, want)
	}

	var d appsv1.Deployment
	r.one(t, "Deployment", &d)
	checkDeployment(t, d, 5)
	c := d.Spec.Template.Spec.Containers[0]
	if c.Ports[0].ContainerPort != 9090 {
		t.Errorf("containerPort %d; want 9090 from config.listen", c.Ports[0].ContainerPort)
	}
	var pg *corev1.EnvVar
	for i, e := range c.Env {
		if e.Name == "PGPASSWORD" {
			pg = &c.Env[i]
		}
	}
	if pg == nil || pg.Value != "" || pg.ValueFrom == nil || pg.ValueFrom.SecretKeyRef == nil ||
		pg.ValueFrom.SecretKeyRef.Name != "byok-db" || pg.ValueFrom.SecretKeyRef.Key != "pw" {
		t.Errorf("PGPASSWORD %+v; want it from Secret byok-db, key pw", pg)
	}

	extra := false
	for _, m := range c.VolumeMounts {
		extra = extra || (m.Name == "pg-client" && m.MountPath == "/etc/byok-pg")
	}
	if !extra || d.Spec.Template.Spec.Volumes[len(d.Spec.Template.Spec.Volumes)-1].Secret == nil {
		t.Errorf("extraVolumes/extraVolumeMounts not rendered: mounts %+v", c.VolumeMounts)
	}

	var sm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			Endpoints []struct {
				Port          string `json:"port"`
				Path          string `json:"path"`
				Interval      string `json:"interval"`
				ScrapeTimeout string `json:"scrapeTimeout"`
			} `json:"endpoints"`
		} `json:"spec"`
	}
	r.one(t, "ServiceMonitor", &sm)
	if sm.APIVersion != "monitoring.coreos.com/v1" {
		t.Errorf("ServiceMonitor apiVersion %s", sm.APIVersion)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v; want port http, path /metrics", sm.Spec.Endpoints)
	}
	if sm.Metadata.Labels["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels %v; want serviceMonitor.labels among them", sm.Metadata.Labels)
	}
	var svc corev1.Service
	r.one(t, "Service", &svc)
	if !maps.Equal(sm.Spec.Selector.MatchLabels, svc.Labels) && !subset(sm.Spec.Selector.MatchLabels, svc.Labels) {
		t.Errorf("ServiceMonitor selects %v; the Service's labels are %v", sm.Spec.Selector.MatchLabels, svc.Labels)
	}

	var cm corev1.ConfigMap
	r.one(t, "ConfigMap", &cm)
	checkConfig(t, cm.Data["config.yaml"], map[string]string{
		"listen":                             ":9090",
		"keyring.check_interval":             "30s",
		"keyring.max_staleness":              "30m",
		"jobs.batch_size":                    "500",
		"azure.client_id":                    "aaaaaaaa-1111-2222-3333-444444444444",
		"azure.workload_identity.issuer":     "https://westeurope.oic.prod-aks.azure.com/11111111-2222-3333-4444-555555555555/abcdef/",
		"azure.workload_identity.subject":    "system:serviceaccount:byok:byok",
		"azure.workload_identity.token_file": "/var/run/secrets/azure/tokens/azure-identity-token",
	})
	checkNoSecrets(t, r)

	// A config change rolls the pods.
	var d0 appsv1.Deployment
	mustRender(t, siteValues()).one(t, "Deployment", &d0)
	if d0.Spec.Template.Annotations["checksum/config"] == d.Spec.Template.Annotations["checksum/config"] {
		t.Error("the pod template's checksum/config annotation does not change with the configuration")
	}
}

func TestChartPDBAndServiceMonitorOff(t *testing.T) {
	r := mustRender(t, merge(siteValues(), map[string]any{
		"podDisruptionBudget": map[string]any{"enabled": false},
		"serviceMonitor":      map[string]any{"enabled": false},
	}))
	for _, kind := range r.kinds() {
		if kind == "PodDisruptionBudget" || kind == "ServiceMonitor" {
			t.Errorf("%s rendered while disabled", kind)
		}
	}
}

func subset(sub, super map[string]string) bool {
	for k, v := range sub {
		if super[k] != v {
			return false
		}
	}
	return true
}

// checkDeployment asserts the pod spec: replicas, probes, hardening,
// workload identity and writable paths.
func checkDeployment(t *testing.T, d appsv1.Deployment, replicas int32) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != replicas {
		t.Errorf("replicas %v; want %d", d.Spec.Replicas, replicas)
	}
	p := d.Spec.Template.Spec
	if !subset(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("selector %v does not select the pod labels %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
	if got := d.Spec.Template.Labels["azure.workload.identity/use"]; got != "true" {
		t.Errorf(`pod label azure.workload.identity/use = %q; want "true" (the webhook injects the federated token only then)`, got)
	}
	if _, ok := d.Spec.Selector.MatchLabels["azure.workload.identity/use"]; ok {
		t.Error("the selector holds azure.workload.identity/use; it is immutable, keep it to the app labels")
	}
	if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
		t.Error("the pods mount a Kubernetes API token; byok never calls the API server")
	}
	if len(p.Containers) != 1 {
		t.Fatalf("%d containers; want 1", len(p.Containers))
	}
	c := p.Containers[0]
	if want := []string{"serve", "--config", "/etc/byok/config.yaml"}; len(c.Args) < 3 || !slices.Equal(c.Args[:3], want) || len(c.Command) != 0 {
		t.Errorf("command %q args %q; want the image's entrypoint with args %q…", c.Command, c.Args, want)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" {
		t.Fatalf("ports %+v; want one named http", c.Ports)
	}
	for name, probe := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("no HTTP probe on %s", name)
			continue
		}
		if probe.HTTPGet.Path != name || probe.HTTPGet.Port.String() != "http" {
			t.Errorf("probe %s:%s; want %s on port http", probe.HTTPGet.Path, probe.HTTPGet.Port.String(), name)
		}
	}
	if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe on %s; want /healthz (readiness failing must not restart pods)", c.LivenessProbe.HTTPGet.Path)
	}

	// Hardening, pod and container.
	ps := p.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser == 0 ||
		ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v; want runAsNonRoot, a non-zero runAsUser, seccomp RuntimeDefault", ps)
	}
	cs := c.SecurityContext
	switch {
	case cs == nil:
		t.Error("no container securityContext")
	default:
		if cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem {
			t.Error("readOnlyRootFilesystem is not true")
		}
		if cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation {
			t.Error("allowPrivilegeEscalation is not false")
		}
		if cs.RunAsNonRoot == nil || !*cs.RunAsNonRoot {
			t.Error("container runAsNonRoot is not true")
		}
		if cs.Capabilities == nil || !slices.Equal(cs.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(cs.Capabilities.Add) != 0 {
			t.Errorf("capabilities %+v; want drop ALL, add none", cs.Capabilities)
		}
		if cs.SeccompProfile == nil || cs.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("container seccompProfile %+v; want RuntimeDefault", cs.SeccompProfile)
		}
		if cs.Privileged != nil && *cs.Privileged {
			t.Error("privileged")
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v; want cpu and memory requests and a memory limit", c.Resources)
	}

	// The only writable paths are emptyDirs: /tmp, and the working
	// directory where the first operator token is written.
	writable := map[string]bool{}
	for _, m := range c.VolumeMounts {
		if m.ReadOnly {
			continue
		}
		for _, v := range p.Volumes {
			if v.Name == m.Name {
				if v.EmptyDir == nil {
					t.Errorf("volume %s mounted writable at %s is not an emptyDir", v.Name, m.MountPath)
				}
				writable[m.MountPath] = true
			}
		}
	}
	if !writable["/tmp"] || !writable["/var/lib/byok"] {
		t.Errorf("writable mounts %v; want emptyDirs at /tmp and /var/lib/byok", writable)
	}
	tokenFile := ""
	for i, a := range c.Args {
		if a == "--operator-token-file" && i+1 < len(c.Args) {
			tokenFile = c.Args[i+1]
		}
	}
	if !strings.HasPrefix(tokenFile, "/var/lib/byok/") {
		t.Errorf("--operator-token-file %q; want a file under the writable /var/lib/byok (the root filesystem is read-only)", tokenFile)
	}
}

// checkConfig decodes the rendered configuration with byok's own config
// package, as byok serve does, validates it, and compares fields.
func checkConfig(t *testing.T, text string, want map[string]string) {
	t.Helper()
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(text), &raw); err != nil {
		t.Fatalf("config.yaml is not YAML: %v\n%s", err, text)
	}
	for path, v := range want {
		if got := lookup(raw, path); got != v {
			t.Errorf("config %s = %q; want %q", path, got, v)
		}
	}
	c, err := config.Parse([]byte(text))
	if err != nil {
		t.Errorf("byok serve would refuse the rendered config.yaml: %v\n%s", err, text)
		return
	}
	if err := c.Validate(); err != nil {
		t.Errorf("the rendered config.yaml does not validate: %v\n%s", err, text)
	}
	if c.Store.Postgres == "" || c.Store.SQLite != "" {
		t.Errorf("store %+v; want PostgreSQL (several replicas)", c.Store)
	}
}

// lookup returns the scalar at a dotted path of a decoded YAML map, as text.
func lookup(m map[string]any, path string) string {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return "<missing>"
		}
		if v, ok = mm[k]; !ok {
			return "<missing>"
		}
	}
	return fmt.Sprint(v)
}

// checkNoSecrets asserts that the chart creates no Secret and puts no
// credential in any object: no password in the configuration or the
// connection string, and no literal value in a secret-looking variable.
func checkNoSecrets(t *testing.T, r rendered) {
	t.Helper()
	for key, doc := range r.docs {
		kind, _, _ := strings.Cut(key, "/")
		if kind == "Secret" {
			t.Errorf("the chart renders %s: byok's credentials are workload identity, and any database password lives in a Secret the platform manages", key)
		}
		if regexp.MustCompile(`(?i)password\s*=|client_secret|BEGIN [A-Z ]*PRIVATE KEY`).MatchString(doc) {
			t.Errorf("%s holds something that looks like a credential:\n%s", key, doc)
		}
	}
	var d appsv1.Deployment
	r.one(t, "Deployment", &d)
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if secretName.MatchString(e.Name) && e.Value != "" {
				t.Errorf("env %s has a literal value; a secret comes from a secretKeyRef", e.Name)
			}
		}
	}
}

// TestChartLint runs helm lint's rules (Chart.yaml, values, templates)
// through the SDK and fails on any warning or error.
func TestChartLint(t *testing.T) {
	abs, err := filepath.Abs(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	for name, vals := range map[string]map[string]any{
		"site values":   siteValues(),
		"all optionals": merge(siteValues(), map[string]any{"serviceMonitor": map[string]any{"enabled": true}}),
	} {
		res := lint.RunAll(abs, vals, "byok")
		for _, m := range res.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("helm lint, %s: %s", name, m)
			} else {
				t.Logf("helm lint, %s: %s", name, m)
			}
		}
	}
}

// values.schema.json refuses misspelt and mistyped values, and a password
// in the connection string, before anything renders.
func TestChartValuesSchema(t *testing.T) {
	for name, over := range map[string]map[string]any{
		"misspelt top-level value": {"replicas": 5},
		"misspelt nested value":    {"serviceMonitor": map[string]any{"enable": true}},
		"replicas as text":         {"replicaCount": "3"},
		"password in postgres":     {"config": map[string]any{"store": map[string]any{"postgres": "host=db user=byok Password=hunter2"}}},
		"unknown log level":        {"config": map[string]any{"log": map[string]any{"level": "verbose"}}},
	} {
		if _, err := render(t, merge(siteValues(), over)); err == nil || !strings.Contains(err.Error(), "schema") {
			t.Errorf("%s: err = %v; want the values schema to refuse it", name, err)
		}
	}
}
