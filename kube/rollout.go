package kube

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mqttgen/mqttgen/deploy"
)

// WaitRollout waits until the home's StatefulSet has rolled out: its
// controller saw the applied generation, and every replica is updated and
// ready (the readiness probe opened its listener). The error says how far
// it got.
func (a *Applier) WaitRollout(ctx context.Context, d *Desired, timeout time.Duration) error {
	var sts *unstructured.Unstructured
	for _, u := range d.Objects {
		if u.GetKind() == "StatefulSet" {
			sts = u
		}
	}
	if sts == nil {
		return nil
	}
	gvr, _ := gvrOf("StatefulSet")
	res := a.dyn.Resource(gvr).Namespace(sts.GetNamespace())
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	state := "not read yet"
	for {
		u, err := res.Get(ctx, sts.GetName(), metav1.GetOptions{})
		if err == nil {
			var done bool
			done, state = rolledOut(u)
			if done {
				return nil
			}
			// A broker that cannot start does not get better by waiting.
			if why := a.stuck(ctx, u); why != "" {
				return fmt.Errorf("the broker does not come up (StatefulSet %s/%s: %s; %s)", sts.GetNamespace(), sts.GetName(), state, why)
			}
		} else if ctx.Err() == nil {
			state = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the broker did not roll out within %s (StatefulSet %s/%s: %s)", timeout, sts.GetNamespace(), sts.GetName(), state)
		case <-time.After(time.Second):
		}
	}
}

// stuckReasons are the kubelet's reasons a container waits that do not
// pass on their own.
var stuckReasons = map[string]bool{
	"CrashLoopBackOff": true, "ImagePullBackOff": true, "ErrImageNeverPull": true,
	"InvalidImageName": true, "CreateContainerConfigError": true, "CreateContainerError": true,
}

// stuck says why a pod of the StatefulSet cannot start, or "".
func (a *Applier) stuck(ctx context.Context, sts *unstructured.Unstructured) string {
	sel, _, _ := unstructured.NestedStringMap(sts.Object, "spec", "selector", "matchLabels")
	if len(sel) == 0 {
		return ""
	}
	pods, err := a.dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Namespace(sts.GetNamespace()).
		List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(sel).String()})
	if err != nil {
		return ""
	}
	for _, pod := range pods.Items {
		for _, field := range []string{"initContainerStatuses", "containerStatuses"} {
			statuses, _, _ := unstructured.NestedSlice(pod.Object, "status", field)
			for _, st := range statuses {
				st, _ := st.(map[string]any)
				reason, _, _ := unstructured.NestedString(st, "state", "waiting", "reason")
				if !stuckReasons[reason] {
					continue
				}
				msg, _, _ := unstructured.NestedString(st, "state", "waiting", "message")
				why := fmt.Sprintf("pod %s, container %v: %s", pod.GetName(), st["name"], reason)
				if msg != "" {
					why += ": " + firstLine(msg)
				}
				return why
			}
		}
	}
	return ""
}

// rolledOut reads a StatefulSet's status as kubectl rollout status does.
func rolledOut(u *unstructured.Unstructured) (bool, string) {
	n := func(f string) int64 {
		v, _, _ := unstructured.NestedInt64(u.Object, "status", f)
		return v
	}
	replicas, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
	if g := n("observedGeneration"); g < u.GetGeneration() {
		return false, fmt.Sprintf("its controller has not seen generation %d yet (it saw %d)", u.GetGeneration(), g)
	}
	cur, _, _ := unstructured.NestedString(u.Object, "status", "currentRevision")
	upd, _, _ := unstructured.NestedString(u.Object, "status", "updateRevision")
	if n("updatedReplicas") < replicas || (upd != "" && cur != upd) {
		return false, fmt.Sprintf("%d of %d pods updated", n("updatedReplicas"), replicas)
	}
	if n("readyReplicas") < replicas {
		return false, fmt.Sprintf("%d of %d pods ready", n("readyReplicas"), replicas)
	}
	return true, "rolled out"
}

// Rollback undoes what Execute did of a plan, from the objects observed
// before it: an object it created is deleted, one it changed, replaced or
// destroyed is applied again as it was. It returns how many objects it put
// back.
func (a *Applier) Rollback(ctx context.Context, o *Observed, p *Plan) (int, error) {
	n := 0
	for _, op := range slices.Backward(p.Ops) {
		k := opKey(op)
		prev := o.Existing[k]
		if op.Action == deploy.Delete {
			prev = o.Owned[k]
		}
		if op.Action == deploy.Create || prev == nil {
			if err := a.delete(ctx, k); err != nil {
				return n, err
			}
			n++
			continue
		}
		data, err := asApplied(prev).MarshalJSON()
		if err != nil {
			return n, err
		}
		if _, err := a.Apply(ctx, data, false); err != nil {
			if apierrors.IsInvalid(err) && op.Action == deploy.Replace {
				// What the server refused to change in place goes back
				// the way it came: deleted and created.
				if err := a.delete(ctx, k); err != nil {
					return n, err
				}
				_, err = a.Apply(ctx, data, false)
			}
			if err != nil {
				return n, err
			}
		}
		n++
	}
	return n, nil
}

// asApplied is an object as read, without what the server keeps for
// itself, to be applied again.
func asApplied(u *unstructured.Unstructured) *unstructured.Unstructured {
	c := u.DeepCopy()
	delete(c.Object, "status")
	for _, f := range []string{"resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	if c.GetAPIVersion() == "" {
		gvr, _ := gvrOf(c.GetKind())
		c.SetAPIVersion(gvr.GroupVersion().String())
	}
	return c
}

// PlanDestroy is the plan that removes the project's objects. The
// broker's volume claims (its persisted messages) are kept unless claims
// is set, and so is a namespace that holds them, as deleting a namespace
// deletes everything in it. kept says what stays and why.
func PlanDestroy(project, namespace string, o *Observed, claims bool) (p *Plan, kept []string) {
	p = &Plan{Project: project, Namespace: namespace}
	holds := map[string]int{}
	var claimOps []deploy.Op
	for _, k := range o.Claims {
		if claims {
			claimOps = append(claimOps, deploy.Op{Action: deploy.Delete, Kind: k.Kind, Name: name(k), Reasons: []string{"--volumes: the broker's persisted messages go with it"}})
		} else {
			holds[k.Namespace]++
			kept = append(kept, fmt.Sprintf("%s (the broker's data; --volumes removes it)", k))
		}
	}
	owned := slices.SortedFunc(maps.Keys(o.Owned), compareKeys)
	slices.Reverse(owned)
	for _, k := range owned {
		if k.Kind == "Namespace" && claimOps != nil {
			// Claims after the StatefulSet that uses them, before their namespace.
			p.Ops = append(p.Ops, claimOps...)
			claimOps = nil
		}
		if k.Kind == "Namespace" && holds[k.Name] > 0 {
			kept = append(kept, fmt.Sprintf("%s (it holds %d kept volume claims)", k, holds[k.Name]))
			continue
		}
		p.Ops = append(p.Ops, deploy.Op{Action: deploy.Delete, Kind: k.Kind, Name: name(k), Reasons: []string{"mqttgen destroy"}})
	}
	p.Ops = append(p.Ops, claimOps...)
	return p, kept
}

// WaitLogin logs in to the broker through the home's Service, as apply's
// readiness check does on Docker (deploy.ProbeLogin), until it succeeds or
// timeout: at the load balancer's address (LoadBalancer), or a node's and
// the node port (NodePort), on the first MQTT listener (a TLS one if there
// is no plain one). A ClusterIP Service, or none, is not reachable from
// outside the cluster: it says so and tries nothing. It returns what it did.
func (a *Applier) WaitLogin(ctx context.Context, d *Desired, cred deploy.Credentials, timeout time.Duration) (string, error) {
	var svc *unstructured.Unstructured
	for _, u := range d.Objects {
		if u.GetKind() == "Service" {
			svc = u
		}
	}
	if svc == nil {
		return "no login tried: the broker has no Service (every listener is bound to loopback)", nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := "not tried yet"
	for {
		host, t, why, err := a.serviceTarget(ctx, svc)
		switch {
		case err != nil:
			last = err.Error()
		case why != "":
			return why, nil
		case host == "":
			last = "the Service has no address yet"
		default:
			if err := deploy.ProbeLogin(host, t, cred); err != nil {
				last = err.Error()
			} else {
				who := "anonymously"
				if cred.Username != "" {
					who = "as " + cred.Username
				}
				return fmt.Sprintf("logged in %s through the Service at %s", who, net.JoinHostPort(host, strconv.Itoa(t.Port))), nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the broker rolled out but accepts no login through the Service within %s (%s)", timeout, last)
		case <-time.After(time.Second):
		}
	}
}

// serviceTarget is where this host reaches the Service's first MQTT port;
// why says why it cannot.
func (a *Applier) serviceTarget(ctx context.Context, want *unstructured.Unstructured) (host string, t deploy.ProbeTarget, why string, err error) {
	gvr, _ := gvrOf("Service")
	svc, err := a.dyn.Resource(gvr).Namespace(want.GetNamespace()).Get(ctx, want.GetName(), metav1.GetOptions{})
	if err != nil {
		return "", t, "", err
	}
	typ, _, _ := unstructured.NestedString(svc.Object, "spec", "type")
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	var port map[string]any
	for _, prefix := range []string{"mqtt-", "mqtts-"} {
		for _, p := range ports {
			p, _ := p.(map[string]any)
			if n, _ := p["name"].(string); port == nil && strings.HasPrefix(n, prefix) {
				port = p
				t.TLS = prefix == "mqtts-"
			}
		}
	}
	if port == nil {
		return "", t, "no login tried: the Service has no MQTT port (websockets only)", nil
	}
	t.Listener, _ = port["name"].(string)
	switch typ {
	case "LoadBalancer":
		ingress, _, _ := unstructured.NestedSlice(svc.Object, "status", "loadBalancer", "ingress")
		for _, in := range ingress {
			in, _ := in.(map[string]any)
			if ip, _ := in["ip"].(string); ip != "" {
				host = ip
			} else if hn, _ := in["hostname"].(string); hn != "" {
				host = hn
			}
			if host != "" {
				break
			}
		}
		t.Port = int(toInt(port["port"]))
	case "NodePort":
		t.Port = int(toInt(port["nodePort"]))
		nodes, err := a.dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "nodes"}).List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", t, "", err
		}
		for _, n := range nodes.Items {
			addrs, _, _ := unstructured.NestedSlice(n.Object, "status", "addresses")
			for _, ad := range addrs {
				ad, _ := ad.(map[string]any)
				if ty := ad["type"]; (ty == "ExternalIP" || ty == "InternalIP") && host == "" {
					host, _ = ad["address"].(string)
				}
			}
		}
	default:
		return "", t, fmt.Sprintf("no login tried: a %s Service is not reachable from outside the cluster", typ), nil
	}
	return host, t, "", nil
}

func toInt(v any) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case float64:
		return int64(v)
	}
	return 0
}
