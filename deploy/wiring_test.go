package deploy

import (
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Checks that the objects of one output point at each other (Services,
// budgets, policies, autoscalers), and that the image and the backup pod
// agree with the Deployments.

// TestServicesReachTheirPorts: every Service selects one Deployment, each
// Service port targets a container port of the same number (so that
// "ghbroker.auth:8081" in a gateway config means the container's 8081).
func TestServicesReachTheirPorts(t *testing.T) {
	for dir, r := range mustRender(t) {
		for _, svc := range typed[*corev1.Service](r) {
			deps := selectedDeployments(r, svc.Namespace, svc.Spec.Selector)
			if len(deps) != 1 {
				t.Errorf("deploy/%s: Service %s selects %d Deployments", dir, svc.Name, len(deps))
				continue
			}
			c := mainContainer(deps[0])
			if c == nil {
				continue
			}
			for _, sp := range svc.Spec.Ports {
				cp, ok := resolvePort(c, sp.TargetPort)
				switch {
				case !ok:
					t.Errorf("deploy/%s: Service %s port %s targets %s, not a port of %s", dir, svc.Name, sp.Name, sp.TargetPort.String(), deps[0].Name)
				case cp.ContainerPort != sp.Port || cp.Name != sp.Name:
					t.Errorf("deploy/%s: Service %s port %s/%d reaches container port %s/%d", dir, svc.Name, sp.Name, sp.Port, cp.Name, cp.ContainerPort)
				}
			}
		}
	}
}

// TestSelectorsMatch: PodDisruptionBudgets, NetworkPolicies and
// autoscalers point at Deployments of the same output, and the named
// ports of a NetworkPolicy exist.
func TestSelectorsMatch(t *testing.T) {
	for dir, r := range mustRender(t) {
		for _, pdb := range typed[*policyv1.PodDisruptionBudget](r) {
			if pdb.Spec.Selector == nil || len(selectedDeployments(r, pdb.Namespace, pdb.Spec.Selector.MatchLabels)) != 1 {
				t.Errorf("deploy/%s: PodDisruptionBudget %s does not select one Deployment", dir, pdb.Name)
			}
		}
		for _, np := range typed[*networkingv1.NetworkPolicy](r) {
			deps := selectedDeployments(r, np.Namespace, np.Spec.PodSelector.MatchLabels)
			if len(deps) != 1 {
				t.Errorf("deploy/%s: NetworkPolicy %s does not select one Deployment", dir, np.Name)
				continue
			}
			c := mainContainer(deps[0])
			for _, rule := range np.Spec.Ingress {
				for _, p := range rule.Ports {
					if p.Port == nil || c == nil {
						continue
					}
					if _, ok := resolvePort(c, *p.Port); !ok {
						t.Errorf("deploy/%s: NetworkPolicy %s admits port %s, which %s does not have", dir, np.Name, p.Port.String(), deps[0].Name)
					}
				}
			}
			// Every container port is reachable by some ingress rule.
			for _, cp := range c.Ports {
				if !networkPolicyAdmits(np, cp) {
					t.Errorf("deploy/%s: NetworkPolicy %s blocks port %s", dir, np.Name, cp.Name)
				}
			}
		}
		for _, hpa := range typed[*autoscalingv2.HorizontalPodAutoscaler](r) {
			found := false
			for _, d := range typed[*appsv1.Deployment](r) {
				if hpa.Spec.ScaleTargetRef.Kind == "Deployment" && d.Name == hpa.Spec.ScaleTargetRef.Name && d.Namespace == hpa.Namespace {
					found = true
					if _, cmd := ghbrokerContainer(d); cmd != "authz" {
						t.Errorf("deploy/%s: HorizontalPodAutoscaler %s scales %s, which is not a stateless authz replica", dir, hpa.Name, d.Name)
					}
				}
			}
			if !found {
				t.Errorf("deploy/%s: HorizontalPodAutoscaler %s targets no Deployment of the output", dir, hpa.Name)
			}
		}
	}
}

func networkPolicyAdmits(np *networkingv1.NetworkPolicy, cp corev1.ContainerPort) bool {
	for _, rule := range np.Spec.Ingress {
		if len(rule.Ports) == 0 {
			return true
		}
		for _, p := range rule.Ports {
			if p.Port == nil || p.Port.String() == cp.Name || (p.Port.Type == intstr.Int && p.Port.IntVal == cp.ContainerPort) {
				return true
			}
		}
	}
	return false
}

// TestStoreAccessPodMountsTheStore: the backup/restore pod of
// docs/operations.md mounts the broker's volume where the store lives.
func TestStoreAccessPodMountsTheStore(t *testing.T) {
	cfg, _ := loadConfig(t)
	objs := decodeFile(t, "operations/store-access-pod.yaml")
	pod, ok := objs[0].Typed.(*corev1.Pod)
	if !ok {
		t.Fatal("operations/store-access-pod.yaml must hold a Pod")
	}
	var claim string
	for _, d := range typed[*appsv1.Deployment](mustRender(t)["base"]) {
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				claim = v.PersistentVolumeClaim.ClaimName
			}
		}
	}
	mounted := false
	for _, m := range pod.Spec.Containers[0].VolumeMounts {
		for _, v := range pod.Spec.Volumes {
			if v.Name == m.Name && v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim && m.MountPath == path.Dir(cfg.Storage.Bolt.Path) {
				mounted = true
			}
		}
	}
	if !mounted || claim == "" {
		t.Errorf("the store access pod does not mount PVC %q at %s", claim, path.Dir(cfg.Storage.Bolt.Path))
	}
	checkHardening(t, "operations/store-access-pod.yaml", &pod.Spec, &pod.Spec.Containers[0])
}

// TestDockerfileAgreesWithTheManifests: the image exposes the config's
// ports, reads its config where the pods mount it, and runs as the user
// the pods declare (distroless "nonroot" is 65532).
func TestDockerfileAgreesWithTheManifests(t *testing.T) {
	cfg, _ := loadConfig(t)
	ports := configPorts(t, cfg)
	var expose []string
	var cmd, user, base string
	for _, line := range strings.Split(readText(t, path.Join(repoRoot, "Dockerfile")), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "EXPOSE":
			expose = append(expose, f[1:]...)
		case "CMD":
			cmd = strings.Join(f[1:], " ")
		case "USER":
			user = f[1]
		case "FROM":
			base = f[1]
		}
	}
	var want []string
	for _, name := range []string{"http", "authz", "grpc"} {
		want = append(want, strconv.Itoa(int(ports[name])))
	}
	if !slices.Equal(expose, want) {
		t.Errorf("Dockerfile EXPOSE %v, want the config's ports %v", expose, want)
	}
	if !strings.Contains(cmd, configMountPath) {
		t.Errorf("Dockerfile CMD %s does not read %s", cmd, configMountPath)
	}
	if !strings.Contains(base, "distroless") || !strings.HasSuffix(base, ":nonroot") || user != "nonroot:nonroot" {
		t.Errorf("the image (FROM %s, USER %s) is not distroless nonroot, whose uid the pods set", base, user)
	}
	for dir, r := range mustRender(t) {
		for _, d := range typed[*appsv1.Deployment](r) {
			if sc := d.Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 {
				t.Errorf("deploy/%s: Deployment %s does not run as uid 65532 (distroless nonroot)", dir, d.Name)
			}
		}
	}
}
