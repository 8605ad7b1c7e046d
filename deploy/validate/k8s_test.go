package validate

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// k8sObjects are the resources deploy/k8s/kustomization.yaml lists.
func k8sObjects(t *testing.T) (kust map[string]any, objs []map[string]any) {
	t.Helper()
	docs := yamlDocs(t, "../k8s/kustomization.yaml")
	if len(docs) != 1 {
		t.Fatalf("kustomization.yaml: %d documents", len(docs))
	}
	kust = docs[0]
	listed := map[string]bool{}
	for _, r := range strs(kust, "resources") {
		listed[r] = true
		objs = append(objs, yamlDocs(t, filepath.Join("../k8s", r))...)
	}
	// Every manifest is listed (except the Secret example, which users create).
	files, _ := filepath.Glob("../k8s/*.yaml")
	for _, f := range files {
		base := filepath.Base(f)
		if base != "kustomization.yaml" && base != "features.yaml" && !strings.HasSuffix(base, ".example.yaml") && !listed[base] {
			t.Errorf("deploy/k8s/%s is not in kustomization.yaml's resources", base)
		}
	}
	return kust, objs
}

func objName(o map[string]any) string { return str(o, "kind") + "/" + str(o, "metadata", "name") }

// labelsMatch: every selector label is on the pod.
func labelsMatch(selector, labels any) bool {
	sel, _ := selector.(map[string]any)
	lab, _ := labels.(map[string]any)
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if fmt.Sprint(lab[k]) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}

// The manifests are wired the way livefeed runs: processors as a StatefulSet
// whose --data is a PersistentVolume, serving as a Deployment behind a
// Service with an HPA, probes on /healthz and /readyz of the port --http
// listens on, requests and limits everywhere, non-root read-only containers,
// disruption budgets and services that select real pods, only Secrets and
// ConfigMaps that exist, only LIVEFEED_* variables that the commands read,
// and process and serve on the real model the image carries.
// (Schema validation: kubernetes-validate in deploy/validate.sh.)
func TestKubernetesManifests(t *testing.T) {
	kust, objs := k8sObjects(t)
	models, err := imageModels("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}

	generated := map[string][]string{} // generated ConfigMap → keys
	var sharedEnv []string
	for _, g := range list(kust, "configMapGenerator") {
		name := str(g, "name")
		for _, f := range strs(g, "files") {
			if _, err := os.Stat(filepath.Join("../k8s", f)); err != nil {
				t.Errorf("configMapGenerator %s: %v", name, err)
			}
			generated[name] = append(generated[name], filepath.Base(f))
		}
		for _, l := range strs(g, "literals") {
			k, _, _ := strings.Cut(l, "=")
			generated[name] = append(generated[name], k)
			if name == "livefeed-env" {
				sharedEnv = append(sharedEnv, l)
			}
		}
	}
	// The Secrets users create, as documented in kafka-secret.example.yaml:
	// "name/key" → true.
	secretKeys := map[string]bool{}
	for _, d := range yamlDocs(t, "../k8s/kafka-secret.example.yaml") {
		data, _ := get(d, "stringData").(map[string]any)
		for k := range data {
			secretKeys[str(d, "metadata", "name")+"/"+k] = true
		}
	}
	imageNames := map[string]bool{}
	for _, im := range list(kust, "images") {
		imageNames[str(im, "name")] = true
	}

	type workload struct {
		obj  map[string]any
		pod  any
		kind string
	}
	var workloads []workload
	byKindName := map[string]map[string]any{}
	for _, o := range objs {
		byKindName[objName(o)] = o
		switch k := str(o, "kind"); k {
		case "Deployment", "StatefulSet", "Job":
			workloads = append(workloads, workload{o, get(o, "spec", "template"), k})
		}
	}
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[str(o, "kind")]++
	}
	for k, n := range map[string]int{"StatefulSet": 1, "Deployment": 1, "Service": 2, "HorizontalPodAutoscaler": 1, "PodDisruptionBudget": 2, "Job": 1} {
		if kinds[k] < n {
			t.Errorf("want at least %d %s, have %d", n, k, kinds[k])
		}
	}

	for _, w := range workloads {
		name := objName(w.obj)
		spec := get(w.pod, "spec")
		if w.kind != "Job" && !labelsMatch(get(w.obj, "spec", "selector", "matchLabels"), get(w.pod, "metadata", "labels")) {
			t.Errorf("%s: selector does not match its pod labels", name)
		}
		if get(spec, "securityContext", "runAsNonRoot") != true {
			t.Errorf("%s: pod not runAsNonRoot", name)
		}
		volumes := map[string]any{}
		for _, v := range list(spec, "volumes") {
			volumes[str(v, "name")] = v
			if cm := str(v, "configMap", "name"); cm != "" && generated[cm] == nil {
				t.Errorf("%s: volume %s uses ConfigMap %s, which the kustomization does not generate", name, str(v, "name"), cm)
			}
			if s := str(v, "secret", "secretName"); s != "" {
				if s != "livefeed-kafka" {
					t.Errorf("%s: unknown Secret %s", name, s)
				}
				for _, it := range list(v, "secret", "items") {
					if !secretKeys[s+"/"+str(it, "key")] {
						t.Errorf("%s: Secret key %s is not documented in kafka-secret.example.yaml", name, str(it, "key"))
					}
				}
			}
		}
		claims := map[string]bool{}
		for _, c := range list(w.obj, "spec", "volumeClaimTemplates") {
			claims[str(c, "metadata", "name")] = true
		}
		for _, c := range list(spec, "containers") {
			cname := name + " container " + str(c, "name")
			for _, r := range []string{"requests", "limits"} {
				for _, res := range []string{"cpu", "memory"} {
					if get(c, "resources", r, res) == nil {
						t.Errorf("%s: no %s %s", cname, res, r)
					}
				}
			}
			if get(c, "securityContext", "readOnlyRootFilesystem") != true || get(c, "securityContext", "allowPrivilegeEscalation") != false {
				t.Errorf("%s: want readOnlyRootFilesystem and no privilege escalation", cname)
			}
			mounts := map[string]string{} // path → volume
			for _, m := range list(c, "volumeMounts") {
				v := str(m, "name")
				if volumes[v] == nil && !claims[v] {
					t.Errorf("%s: mount of unknown volume %s", cname, v)
				}
				mounts[str(m, "mountPath")] = v
			}
			ports := map[string]int{}
			for _, p := range list(c, "ports") {
				ports[str(p, "name")], _ = get(p, "containerPort").(int)
			}
			for _, e := range list(c, "env") {
				if sk := get(e, "valueFrom", "secretKeyRef"); sk != nil && !secretKeys[str(sk, "name")+"/"+str(sk, "key")] {
					t.Errorf("%s: env %s uses Secret key %s, not documented in kafka-secret.example.yaml", cname, str(e, "name"), str(sk, "key"))
				}
			}
			if str(w.pod, "metadata", "annotations", "prometheus.io/scrape") == "true" {
				port := str(w.pod, "metadata", "annotations", "prometheus.io/port")
				found := false
				for _, p := range ports {
					if fmt.Sprint(p) == port {
						found = true
					}
				}
				if !found || str(w.pod, "metadata", "annotations", "prometheus.io/path") != "/metrics" {
					t.Errorf("%s: prometheus.io/port %q is not a container port, or the path is not /metrics", cname, port)
				}
				if w.kind != "Job" && get(w.pod, "metadata", "labels", "app.kubernetes.io/name") == nil {
					t.Errorf("%s: no app.kubernetes.io/name label (the scrape job's job label)", cname)
				}
			}
			if str(c, "image") != "livefeed" {
				continue // kafka-exporter
			}
			if !imageNames["livefeed"] {
				t.Errorf("%s: image livefeed is not set by the kustomization's images", cname)
			}
			args := strs(c, "args")
			cmd := commandOf(args)
			var env []string
			for _, e := range list(c, "env") {
				env = append(env, str(e, "name"))
			}
			usesSharedEnv := false
			for _, ef := range list(c, "envFrom") {
				if str(ef, "configMapRef", "name") == "livefeed-env" {
					usesSharedEnv = true
				}
			}
			if !usesSharedEnv {
				t.Errorf("%s: does not load the livefeed-env ConfigMap", cname)
			}
			for _, l := range sharedEnv {
				k, v, _ := strings.Cut(l, "=")
				env = append(env, k)
				if k == "LIVEFEED_FEATURES" && !mountedFile(mounts, volumes, generated, v) {
					t.Errorf("%s: LIVEFEED_FEATURES=%s is not a file of a mounted ConfigMap", cname, v)
				}
			}
			checkEnv(t, cname, cmd, env)
			envValues := map[string]string{}
			for _, l := range sharedEnv {
				k, v, _ := strings.Cut(l, "=")
				envValues[k] = v
			}
			for _, e := range list(c, "env") {
				envValues[str(e, "name")] = str(e, "value")
			}
			if err := checkModel(cmd, args, envValues, models); err != nil {
				t.Errorf("%s: %v", cname, err)
			}
			for _, e := range list(c, "env") {
				if strings.HasSuffix(str(e, "name"), "_FILE") && !mountedFile(mounts, volumes, generated, str(e, "value")) {
					t.Errorf("%s: %s=%s is not a mounted file", cname, str(e, "name"), str(e, "value"))
				}
			}
			if get(c, "env") != nil {
				for _, e := range list(c, "env") {
					if str(e, "name") == "LIVEFEED_KAFKA_PASSWORD" {
						t.Errorf("%s: the password must come from a file, not the environment", cname)
					}
				}
			}
			data, ok := flagValue(args, "data")
			if !ok {
				t.Errorf("%s: no --data", cname)
			} else if w.kind != "Job" {
				vol := mounts[data]
				switch {
				case vol == "":
					t.Errorf("%s: --data %s is not a mounted volume", cname, data)
				case w.kind == "StatefulSet" && !claims[vol]:
					t.Errorf("%s: the processors' state (%s) must be on a PersistentVolumeClaim template", cname, data)
				}
			}
			if w.kind == "Job" {
				if str(spec, "restartPolicy") != "OnFailure" || strings.Join(cmd, " ") != "topics create" {
					t.Errorf("%s: want a `topics create` job restarting on failure", cname)
				}
				continue
			}
			addr, ok := flagValue(args, "http")
			if !ok {
				t.Errorf("%s: no --http", cname)
				continue
			}
			for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
				if got := str(c, probe, "httpGet", "path"); got != path {
					t.Errorf("%s: %s path %q, want %s", cname, probe, got, path)
				}
				port := ports[str(c, probe, "httpGet", "port")]
				if port == 0 || !strings.HasSuffix(addr, fmt.Sprintf(":%d", port)) {
					t.Errorf("%s: %s port %v is not where --http=%s listens", cname, probe, get(c, probe, "httpGet", "port"), addr)
				}
			}
		}
	}
	if sts := byKindName["StatefulSet/livefeed-process"]; sts == nil || len(list(sts, "spec", "volumeClaimTemplates")) == 0 {
		t.Error("the processors must be a StatefulSet livefeed-process with volume claim templates")
	}

	// Services, PDBs and the HPA point at real workloads and ports.
	for _, o := range objs {
		name := objName(o)
		switch str(o, "kind") {
		case "Service", "PodDisruptionBudget":
			sel := get(o, "spec", "selector")
			if str(o, "kind") == "PodDisruptionBudget" {
				sel = get(o, "spec", "selector", "matchLabels")
			}
			var match *workload
			for i := range workloads {
				if labelsMatch(sel, get(workloads[i].pod, "metadata", "labels")) {
					match = &workloads[i]
				}
			}
			if match == nil {
				t.Errorf("%s selects no pods", name)
				continue
			}
			if str(o, "kind") == "Service" {
				for _, p := range list(o, "spec", "ports") {
					tp := str(p, "targetPort")
					found := false
					for _, c := range list(match.pod, "spec", "containers") {
						for _, cp := range list(c, "ports") {
							if str(cp, "name") == tp {
								found = true
							}
						}
					}
					if !found {
						t.Errorf("%s: targetPort %q is no named container port of %s", name, tp, objName(match.obj))
					}
				}
			}
		case "HorizontalPodAutoscaler":
			ref := str(o, "spec", "scaleTargetRef", "kind") + "/" + str(o, "spec", "scaleTargetRef", "name")
			if byKindName[ref] == nil {
				t.Errorf("%s scales %s, which does not exist", name, ref)
			}
			if ref == "StatefulSet/livefeed-process" {
				t.Errorf("%s: the processors' replicas are bounded by partitions and hold state; do not autoscale them", name)
			}
		}
	}
}

// mountedFile: path is a file of a mounted ConfigMap or Secret volume.
func mountedFile(mounts map[string]string, volumes map[string]any, generated map[string][]string, path string) bool {
	dir, file := filepath.Split(path)
	v := volumes[mounts[filepath.Clean(dir)]]
	if v == nil {
		return false
	}
	if cm := str(v, "configMap", "name"); cm != "" {
		for _, k := range generated[cm] {
			if k == file {
				return true
			}
		}
		return false
	}
	return str(v, "secret", "secretName") != ""
}
