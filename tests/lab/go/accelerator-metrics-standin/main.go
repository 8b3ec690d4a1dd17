// The lab's accelerator metrics STAND-IN: an exporter of our own, not NVIDIA's DCGM exporter. The lab has no
// GPU, so there is nothing to measure; this program publishes, under the DCGM exporter's real metric and label
// names, the devices the node's DRA driver advertises (the node's ResourceSlices) and what the cluster says about
// them: a device allocated to a claim that a pod holds reports utilisation 100 and half its memory used and
// carries that pod's pod/namespace/container labels (as dcgm-exporter's Kubernetes mapping does); an idle device
// reports 0. Every series also says what it is: lab_accelerator_metrics_standin_info. See tests/lab/README.md.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

type api struct {
	base   string
	token  string
	client *http.Client
}

func newAPI() (*api, error) {
	token, err := os.ReadFile(saDir + "/token")
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(saDir + "/ca.crt")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	return &api{base: "https://" + host + ":" + port, token: strings.TrimSpace(string(token)),
		client: &http.Client{Timeout: 10 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}, nil
}

func (a *api) get(path string, out any) error {
	req, err := http.NewRequest("GET", a.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

type value struct {
	String  *string `json:"string"`
	Int     *int64  `json:"int"`
	Version *string `json:"version"`
	Bool    *bool   `json:"bool"`
}

func (v value) text() string {
	switch {
	case v.String != nil:
		return *v.String
	case v.Version != nil:
		return *v.Version
	case v.Int != nil:
		return strconv.FormatInt(*v.Int, 10)
	case v.Bool != nil:
		return strconv.FormatBool(*v.Bool)
	}
	return ""
}

type slices struct {
	Items []struct {
		Spec struct {
			Driver   string `json:"driver"`
			NodeName string `json:"nodeName"`
			Pool     struct {
				Name string `json:"name"`
			} `json:"pool"`
			Devices []struct {
				Name       string           `json:"name"`
				Attributes map[string]value `json:"attributes"`
				Capacity   map[string]struct {
					Value string `json:"value"`
				} `json:"capacity"`
			} `json:"devices"`
		} `json:"spec"`
	} `json:"items"`
}

type claims struct {
	Items []struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Status struct {
			Allocation *struct {
				Devices struct {
					Results []struct {
						Driver string `json:"driver"`
						Pool   string `json:"pool"`
						Device string `json:"device"`
					} `json:"results"`
				} `json:"devices"`
			} `json:"allocation"`
			ReservedFor []struct {
				Resource string `json:"resource"`
				Name     string `json:"name"`
			} `json:"reservedFor"`
		} `json:"status"`
	} `json:"items"`
}

type pod struct {
	Spec struct {
		NodeName   string `json:"nodeName"`
		Containers []struct {
			Name      string `json:"name"`
			Resources struct {
				Claims []struct {
					Name string `json:"name"`
				} `json:"claims"`
			} `json:"resources"`
		} `json:"containers"`
	} `json:"spec"`
	Status struct {
		Phase string `json:"phase"`
	} `json:"status"`
}

// mebibytes of a quantity such as 80Gi, 81920Mi or 85899345920 (0 when unknown).
func mebibytes(q string) float64 {
	units := map[string]float64{"Ki": 1.0 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024,
		"k": 1000.0 / 1048576, "M": 1e6 / 1048576, "G": 1e9 / 1048576, "T": 1e12 / 1048576}
	for suffix, factor := range units {
		if strings.HasSuffix(q, suffix) {
			n, err := strconv.ParseFloat(strings.TrimSuffix(q, suffix), 64)
			if err == nil {
				return n * factor
			}
		}
	}
	n, err := strconv.ParseFloat(q, 64)
	if err != nil {
		return 0
	}
	return n / 1048576
}

func attr(attrs map[string]value, names ...string) string {
	for _, name := range names {
		for key, v := range attrs {
			if key == name || strings.HasSuffix(key, "/"+name) {
				return v.text()
			}
		}
	}
	return ""
}

func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

type holder struct{ pod, namespace, container string }

func (a *api) render(node string) (string, error) {
	var sl slices
	if err := a.get("/apis/resource.k8s.io/v1/resourceslices?fieldSelector="+url.QueryEscape("spec.nodeName="+node), &sl); err != nil {
		return "", err
	}
	var cl claims
	if err := a.get("/apis/resource.k8s.io/v1/resourceclaims", &cl); err != nil {
		return "", err
	}
	// device (driver/pool/device) -> the running pod on this node holding it through a claim
	held := map[string]holder{}
	for _, c := range cl.Items {
		if c.Status.Allocation == nil {
			continue
		}
		for _, r := range c.Status.ReservedFor {
			if r.Resource != "pods" {
				continue
			}
			var p pod
			if err := a.get("/api/v1/namespaces/"+c.Metadata.Namespace+"/pods/"+r.Name, &p); err != nil {
				continue
			}
			if p.Spec.NodeName != node || p.Status.Phase != "Running" {
				continue
			}
			container := ""
			if len(p.Spec.Containers) > 0 {
				container = p.Spec.Containers[0].Name
			}
			for _, res := range c.Status.Allocation.Devices.Results {
				held[res.Driver+"/"+res.Pool+"/"+res.Device] = holder{r.Name, c.Metadata.Namespace, container}
			}
		}
	}
	type series struct {
		labels, family string
		v              float64
	}
	var out []series
	index := 0
	for _, s := range sl.Items {
		devices := s.Spec.Devices
		sort.Slice(devices, func(i, j int) bool { return devices[i].Name < devices[j].Name })
		for _, d := range devices {
			gpu := attr(d.Attributes, "index", "minor")
			if gpu == "" {
				gpu = strconv.Itoa(index)
			}
			index++
			total := 0.0
			for key, c := range d.Capacity {
				if key == "memory" || strings.HasSuffix(key, "/memory") {
					total = mebibytes(c.Value)
				}
			}
			labels := fmt.Sprintf(`gpu="%s",UUID="%s",device="%s",modelName="%s",Hostname="%s",pci_bus_id="%s",DCGM_FI_DRIVER_VERSION="%s",driver="%s"`,
				escape(gpu), escape(attr(d.Attributes, "uuid")), escape(d.Name),
				escape(attr(d.Attributes, "model", "productName")), escape(node),
				escape(attr(d.Attributes, "pcieBusID", "pciBusID")), escape(attr(d.Attributes, "driverVersion")),
				escape(s.Spec.Driver))
			busy := 0.0
			if h, ok := held[s.Spec.Driver+"/"+s.Spec.Pool.Name+"/"+d.Name]; ok {
				busy = 1
				labels += fmt.Sprintf(`,pod="%s",namespace="%s",container="%s"`, escape(h.pod), escape(h.namespace),
					escape(h.container))
			}
			used := busy * total / 2
			out = append(out,
				series{labels, "DCGM_FI_DEV_GPU_UTIL", 100 * busy},
				series{labels, "DCGM_FI_DEV_FB_USED", used},
				series{labels, "DCGM_FI_DEV_FB_FREE", total - used},
				series{labels, "DCGM_FI_DEV_GPU_TEMP", 35 + 30*busy},
				series{labels, "DCGM_FI_DEV_POWER_USAGE", 70 + 280*busy},
				series{labels, "DCGM_FI_DEV_SM_CLOCK", 1980 * busy},
				series{labels, "lab_accelerator_metrics_standin_info", 1})
		}
	}
	help := map[string]string{
		"DCGM_FI_DEV_GPU_UTIL":                 "gauge GPU utilization (in %). STAND-IN: 100 while a running pod holds the device through a DRA claim, else 0.",
		"DCGM_FI_DEV_FB_USED":                  "gauge Framebuffer memory used (in MiB). STAND-IN: half the device's memory capacity while a pod holds it.",
		"DCGM_FI_DEV_FB_FREE":                  "gauge Framebuffer memory free (in MiB). STAND-IN: capacity minus DCGM_FI_DEV_FB_USED.",
		"DCGM_FI_DEV_GPU_TEMP":                 "gauge GPU temperature (in C). STAND-IN: a fixed value per state.",
		"DCGM_FI_DEV_POWER_USAGE":              "gauge Power draw (in W). STAND-IN: a fixed value per state.",
		"DCGM_FI_DEV_SM_CLOCK":                 "gauge SM clock frequency (in MHz). STAND-IN: a fixed value per state.",
		"lab_accelerator_metrics_standin_info": "gauge 1: these series come from the k8s-ai-conformance lab's stand-in, not from DCGM or a GPU.",
	}
	var b strings.Builder
	for _, family := range []string{"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
		"DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_SM_CLOCK", "lab_accelerator_metrics_standin_info"} {
		kind, text, _ := strings.Cut(help[family], " ")
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", family, text, family, kind)
		for _, s := range out {
			if s.family == family {
				fmt.Fprintf(&b, "%s{%s} %s\n", family, s.labels, strconv.FormatFloat(s.v, 'f', -1, 64))
			}
		}
	}
	return b.String(), nil
}

func main() {
	node := os.Getenv("NODE_NAME")
	listen := os.Getenv("LISTEN")
	if listen == "" {
		listen = ":9400"
	}
	if node == "" {
		log.Fatal("NODE_NAME is not set (the downward API's spec.nodeName)")
	}
	a, err := newAPI()
	if err != nil {
		log.Fatalf("in-cluster API access: %v", err)
	}
	http.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		text, err := a.render(node)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write([]byte(text))
	})
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	log.Printf("accelerator metrics stand-in for node %s on %s (DCGM metric names; not a GPU measurement)", node, listen)
	log.Fatal(http.ListenAndServe(listen, nil))
}
