// Package kube turns a home's rendered broker files into Kubernetes
// manifests: a Namespace, a ConfigMap and a Secret holding the files of
// config/, a StatefulSet of one broker with a volume for its data, and a
// Service, listed by a kustomization.yaml. It knows the rendered files and
// the home, never the broker: the pod runs the same files the Docker target
// mounts, at the same paths.
package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"path"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
	"github.com/mqttgen/mqttgen/schema"
)

// Dir is the folder of the output the manifests are written to.
const Dir = "kubernetes"

// SecretFile is the manifest holding passwd, acl and keys: written 0600 and
// named in Dir's .gitignore, as it must not reach a git repository.
const SecretFile = "secret.yaml"

// UID is the user and group of the broker in its pod, the eclipse-mosquitto
// image's mosquitto user.
const UID = 1883

// ConfigDir is where the broker reads its files in the pod; MountedDir is
// where a Mosquitto pod mounts the Secret and ConfigMap, which the reloader
// copies into ConfigDir.
const (
	ConfigDir  = "/mosquitto/config"
	MountedDir = "/mosquitto/mounted"
)

// ReloaderImage runs `mqttgen reloader` in a Mosquitto pod: the bundled
// broker's image, built from the mqttgen binary (apply builds it on a
// Docker engine; a cluster without a registry imports it, see the README).
const ReloaderImage = "mqttgen/broker:latest"

// DataSize is the volume claimed for the broker's persistence database.
const DataSize = "1Gi"

// Label keys of mqttgen's own, besides Kubernetes' recommended
// app.kubernetes.io/* set.
const (
	LabelProject = "mqttgen.io/project"
	LabelEngine  = "mqttgen.io/engine"
)

// AnnotationRestart on the pod template is a digest of what the broker
// reads only at start (see restartDigest): when it changes, the pod
// template changes and the StatefulSet replaces the pod; any other change
// reaches the running pod as files, and the broker reloads them.
const AnnotationRestart = "mqttgen.io/restart-digest"

const (
	secretMode fs.FileMode = 0o600
	publicMode fs.FileMode = 0o644
	configDir              = "config/"
)

// Manifests returns the files of Dir for a home whose broker files were
// rendered for the container layout (generators.ContainerLayout), sorted
// by path. Files of config/ with mode 0600 go into the Secret, the others
// into the ConfigMap.
func Manifests(cfg *schema.Config, files []generators.File) ([]generators.File, error) {
	k := cfg.Deploy.Kubernetes
	if cfg.Deploy.Target != schema.TargetKubernetes || k == nil {
		return nil, fmt.Errorf("deploy.target is %q: manifests are for target \"kubernetes\"", cfg.Deploy.Target)
	}
	m := &maker{cfg: cfg, k: k, name: cfg.Deploy.Project}
	cm, secret, items := m.configObjects(files)
	if _, ok := cm.Data["mosquitto.conf"]; !ok {
		if _, ok := secret.Data["mosquitto.conf"]; !ok {
			return nil, fmt.Errorf("no config/mosquitto.conf among the rendered files")
		}
	}
	objects := []struct {
		file string
		obj  any
	}{
		{"namespace.yaml", m.namespace()},
		{"configmap.yaml", cm},
		{SecretFile, secret},
		{"statefulset.yaml", m.statefulSet(items, restartDigest(cfg.Broker.Engine, files))},
	}
	if svc := m.service(); svc != nil {
		objects = append(objects, struct {
			file string
			obj  any
		}{"service.yaml", svc})
	}
	var out []generators.File
	var resources []string
	for _, o := range objects {
		data, err := marshal(o.obj)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", o.file, err)
		}
		mode := publicMode
		if o.file == SecretFile {
			mode = secretMode
		}
		out = append(out, generators.File{Path: path.Join(Dir, o.file), Mode: mode, Data: data})
		resources = append(resources, o.file)
	}
	kust, err := yaml.Marshal(map[string]any{
		"apiVersion": "kustomize.config.k8s.io/v1beta1",
		"kind":       "Kustomization",
		"resources":  resources,
	})
	if err != nil {
		return nil, err
	}
	out = append(out,
		generators.File{Path: path.Join(Dir, "kustomization.yaml"), Mode: publicMode, Data: kust},
		generators.File{Path: path.Join(Dir, ".gitignore"), Mode: publicMode, Data: []byte("# passwd, acl and keys: keep them out of git (a sealed or SOPS-encrypted copy may go in)\n/" + SecretFile + "\n")},
	)
	slices.SortFunc(out, func(a, b generators.File) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

type maker struct {
	cfg  *schema.Config
	k    *schema.Kubernetes
	name string
}

// labels are the recommended labels and mqttgen's own, on every object.
func (m *maker) labels() map[string]string {
	l := m.selector()
	l["app.kubernetes.io/component"] = "broker"
	l["app.kubernetes.io/part-of"] = "mqttgen"
	l["app.kubernetes.io/managed-by"] = "mqttgen"
	l[LabelProject] = m.name
	l[LabelEngine] = m.cfg.Broker.Engine
	return l
}

// selector picks the broker's pod; a StatefulSet's selector cannot change,
// so it holds only what names the broker.
func (m *maker) selector() map[string]string {
	name := "mosquitto"
	if m.cfg.Broker.Engine == schema.EngineMqttgen {
		name = "mqttgen-broker"
	}
	return map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/instance": m.name}
}

func (m *maker) meta(name string, namespaced bool) metav1.ObjectMeta {
	om := metav1.ObjectMeta{Name: name, Labels: m.labels()}
	if namespaced {
		om.Namespace = m.k.Namespace
	}
	return om
}

func (m *maker) namespace() *corev1.Namespace {
	return &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: m.meta(m.k.Namespace, false),
	}
}

// configObjects puts the files of config/ into the ConfigMap and the
// Secret, and returns the volume items that lay them out again under
// /mosquitto/config: keys cannot hold '/', so each file's key is its base
// name (the rendered names are unique) and the item gives its path.
func (m *maker) configObjects(files []generators.File) (*corev1.ConfigMap, *corev1.Secret, []corev1.VolumeProjection) {
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: m.meta(m.name+"-config", true),
		Data:       map[string]string{},
	}
	secret := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: m.meta(m.name+"-secret", true),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{},
	}
	var cmItems, secretItems []corev1.KeyToPath
	for _, f := range files {
		rel, ok := strings.CutPrefix(f.Path, configDir)
		if !ok {
			continue
		}
		key := path.Base(rel)
		if f.Mode&0o077 == 0 {
			secret.Data[key] = f.Data
			secretItems = append(secretItems, corev1.KeyToPath{Key: key, Path: rel})
		} else {
			cm.Data[key] = string(f.Data)
			cmItems = append(cmItems, corev1.KeyToPath{Key: key, Path: rel})
		}
	}
	byKey := func(a, b corev1.KeyToPath) int { return strings.Compare(a.Key, b.Key) }
	slices.SortFunc(cmItems, byKey)
	slices.SortFunc(secretItems, byKey)
	items := []corev1.VolumeProjection{
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}, Items: cmItems}},
		{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: secret.Name}, Items: secretItems}},
	}
	return cm, secret, items
}

// port is a listener as the pod and the Service see it.
type port struct {
	name     string
	number   int32
	exposed  bool
	plainTCP bool
}

// ports are the listeners by port number. Names are IANA service names
// (at most 15 characters, no '_'), which listener names need not be.
func (m *maker) ports() []port {
	var out []port
	for _, name := range schema.SortedKeys(m.cfg.Listeners) {
		l := m.cfg.Listeners[name]
		proto := "mqtt"
		if l.Protocol == "websockets" {
			proto = "ws"
		}
		if l.TLS {
			proto += "s"
		}
		// A listener bound to loopback is meant for this host alone: in a
		// pod it stays out of the Service.
		ip := net.ParseIP(l.Bind)
		out = append(out, port{
			name:     fmt.Sprintf("%s-%d", proto, l.Port),
			number:   int32(l.Port),
			exposed:  ip == nil || !ip.IsLoopback(),
			plainTCP: l.Protocol == "mqtt",
		})
	}
	slices.SortFunc(out, func(a, b port) int { return int(a.number - b.number) })
	return out
}

func (m *maker) statefulSet(items []corev1.VolumeProjection, digest string) *appsv1.StatefulSet {
	ports := m.ports()
	var cports []corev1.ContainerPort
	for _, p := range ports {
		cports = append(cports, corev1.ContainerPort{Name: p.name, ContainerPort: p.number, Protocol: corev1.ProtocolTCP})
	}
	// The probes open a TCP connection: an MQTT listener first, as
	// websockets may be behind TLS or a path.
	probePort := ports[0].name
	if i := slices.IndexFunc(ports, func(p port) bool { return p.plainTCP }); i >= 0 {
		probePort = ports[i].name
	}
	probe := func(delay, period int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:        corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString(probePort)}},
			InitialDelaySeconds: delay, PeriodSeconds: period, TimeoutSeconds: 3, FailureThreshold: 3,
		}
	}
	uid := int64(UID)
	mode := int32(0o440)
	no, yes := false, true
	layout := generators.ContainerLayout
	volumes := []corev1.Volume{
		{Name: "config", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: items, DefaultMode: &mode}}},
		{Name: "log", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	var claims []corev1.PersistentVolumeClaim
	if m.cfg.Persistence.Enabled {
		claim := corev1.PersistentVolumeClaim{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
			ObjectMeta: metav1.ObjectMeta{Name: "data", Labels: m.labels()},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(DataSize)}},
			},
		}
		if m.k.StorageClass != "" {
			sc := m.k.StorageClass
			claim.Spec.StorageClassName = &sc
		}
		claims = append(claims, claim)
	} else {
		volumes = append(volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	}
	secure := &corev1.SecurityContext{
		AllowPrivilegeEscalation: &no,
		ReadOnlyRootFilesystem:   &yes,
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	broker := corev1.Container{
		Name:            "broker",
		Image:           m.cfg.Broker.ImageRef(),
		Ports:           cports,
		ReadinessProbe:  probe(0, 5),
		LivenessProbe:   probe(10, 10),
		SecurityContext: secure,
		VolumeMounts: []corev1.VolumeMount{
			{Name: "config", MountPath: layout.ConfigDir, ReadOnly: true},
			{Name: "data", MountPath: layout.DataDir},
			{Name: "log", MountPath: layout.LogDir},
		},
	}
	pod := corev1.PodSpec{
		AutomountServiceAccountToken: &no,
		EnableServiceLinks:           &no,
		SecurityContext: &corev1.PodSecurityContext{
			RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid, RunAsNonRoot: &yes,
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{broker},
		Volumes:    volumes,
	}
	if m.cfg.Broker.Engine != schema.EngineMqttgen {
		m.reloader(&pod)
	}
	replicas := int32(1)
	return &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: m.meta(m.name, true),
		Spec: appsv1.StatefulSetSpec{
			// Open-source Mosquitto does not cluster: one broker, which
			// Kubernetes reschedules with its volume when its node dies.
			Replicas:    &replicas,
			ServiceName: m.name,
			Selector:    &metav1.LabelSelector{MatchLabels: m.selector()},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: m.labels(), Annotations: map[string]string{AnnotationRestart: digest}},
				Spec:       pod,
			},
			VolumeClaimTemplates: claims,
		},
	}
}

// reloader changes a Mosquitto pod so that Mosquitto reads plain files:
// Mosquitto 2.1 refuses the symlinks of Secret and ConfigMap volumes. The
// volume is mounted at MountedDir in an init container and a sidecar
// (`mqttgen reloader`, from the bundled broker's image, which holds the
// mqttgen binary), which copy its files into an emptyDir in memory at
// ConfigDir, where Mosquitto reads them; the sidecar copies each update,
// checked, and signals Mosquitto through the shared process namespace. The
// bundled broker needs none of this: it reads the volume and watches it.
func (m *maker) reloader(pod *corev1.PodSpec) {
	yes := true
	pod.ShareProcessNamespace = &yes
	for i, v := range pod.Volumes {
		if v.Name == "config" {
			pod.Volumes[i].Name = "mounted"
		}
	}
	pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "config", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}})
	mounts := []corev1.VolumeMount{
		{Name: "mounted", MountPath: MountedDir, ReadOnly: true},
		{Name: "config", MountPath: ConfigDir},
	}
	c := corev1.Container{
		Image:           ReloaderImage,
		ImagePullPolicy: corev1.PullIfNotPresent,
		SecurityContext: pod.Containers[0].SecurityContext,
		VolumeMounts:    mounts,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("5m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
	}
	initc, sidecar := c, c
	initc.Name = "config-copy"
	initc.Command = []string{generators.BrokerBinaryPath, "reloader", "--once", "--from", MountedDir, "--to", ConfigDir}
	sidecar.Name = "reloader"
	sidecar.Command = []string{generators.BrokerBinaryPath, "reloader", "--from", MountedDir, "--to", ConfigDir}
	pod.InitContainers = []corev1.Container{initc}
	pod.Containers = append(pod.Containers, sidecar)
}

// service exposes the listeners not bound to loopback; nil when there are
// none.
func (m *maker) service() *corev1.Service {
	var sports []corev1.ServicePort
	for _, p := range m.ports() {
		if p.exposed {
			sports = append(sports, corev1.ServicePort{Name: p.name, Port: p.number, TargetPort: intstr.FromString(p.name), Protocol: corev1.ProtocolTCP})
		}
	}
	if len(sports) == 0 {
		return nil
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: m.meta(m.name, true),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceType(m.k.ServiceType),
			Selector: m.selector(),
			Ports:    sports,
		},
	}
}

// marshal writes an object as YAML without what only the server fills in:
// the typed objects would carry an empty status and a null creationTimestamp.
func marshal(obj any) ([]byte, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	prune(v)
	return yaml.Marshal(v)
}

func prune(v any) {
	switch v := v.(type) {
	case map[string]any:
		delete(v, "status")
		delete(v, "creationTimestamp")
		for _, e := range v {
			prune(e)
		}
	case []any:
		for _, e := range v {
			prune(e)
		}
	}
}

// restartDigest is a digest of what engine reads only at start: the
// options of mosquitto.conf it does not apply again on SIGHUP, its
// listener (and, unless it reloads them, bridge) sections, and the files
// of config/ it does not read again. The tables are mosquitto/conf's and
// deploy's, the same the Docker plan decides restarts with.
func restartDigest(engine string, files []generators.File) string {
	h := sha256.New()
	var confData []byte
	for _, f := range files {
		if f.Path == configDir+"mosquitto.conf" {
			confData = f.Data
		}
	}
	key := conf.TableKey(engine, confData)
	c := conf.Read("mosquitto.conf", confData)
	for _, d := range c.Global {
		if !conf.Reloads(key, d.Key) {
			fmt.Fprintf(h, "%s %s\n", d.Key, d.Value)
		}
	}
	for _, s := range c.Sections {
		if s.Listener() || !conf.ReloadsBridges(key) {
			fmt.Fprintf(h, "%s %s\n", s.Head.Key, s.Head.Value)
			for _, d := range s.Directives {
				fmt.Fprintf(h, "  %s %s\n", d.Key, d.Value)
			}
		}
	}
	for _, f := range files {
		rel, ok := strings.CutPrefix(f.Path, configDir)
		if !ok || rel == "mosquitto.conf" || deploy.ReloadedOnSIGHUP(key, rel) {
			continue
		}
		fmt.Fprintf(h, "file %s %x\n", rel, sha256.Sum256(f.Data))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}

// PublicManifest says name is a file of Dir meant for git (every one but
// the Secret).
func PublicManifest(name string) bool {
	return name == "kustomization.yaml" || name == ".gitignore" || (slices.Contains(order, name) && name != SecretFile)
}
