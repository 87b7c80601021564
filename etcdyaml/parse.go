package etcdyaml

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Setting is one flag a file sets: --Flag=Value, in the flag's own syntax
// (durations as Go durations, lists comma-separated).
type Setting struct {
	Flag, Value string
}

// sections maps the keys of each nested section of the file to the flag
// each stands for; a key missing here has no flag and is ignored.
var sections = map[string]map[string]string{
	"client-transport-security": {
		"cert-file": "cert-file", "key-file": "key-file", "client-cert-file": "client-cert-file",
		"client-key-file": "client-key-file", "client-cert-auth": "client-cert-auth",
		"trusted-ca-file": "trusted-ca-file", "auto-tls": "auto-tls",
		"allowed-hostname": "client-cert-allowed-hostname",
	},
	"peer-transport-security": {
		"cert-file": "peer-cert-file", "key-file": "peer-key-file", "client-cert-file": "peer-client-cert-file",
		"client-key-file": "peer-client-key-file", "client-cert-auth": "peer-client-cert-auth",
		"trusted-ca-file": "peer-trusted-ca-file", "auto-tls": "peer-auto-tls",
		"allowed-cn": "peer-cert-allowed-cn", "allowed-hostname": "peer-cert-allowed-hostname",
		"skip-client-san-verification": "peer-skip-client-san-verification",
	},
	"socket-options":   {"reuse-port": "socket-reuse-port", "reuse-address": "socket-reuse-address"},
	"discovery-config": {"token": "discovery-token"},
}

// skipZero are top-level keys whose zero value etcd replaces with its
// default rather than use.
var skipZero = map[string]bool{"initial-cluster-state": true, "self-signed-cert-validity": true}

// Parse decodes the contents of an etcd configuration file and returns the
// flags it sets, sorted by flag name. Errors are etcd's: a YAML syntax
// error, or a value of the wrong type for its key.
func Parse(b []byte) ([]Setting, error) {
	var c configYAML
	if err := yaml.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	fields := fieldsByKey(reflect.ValueOf(c))
	var out []Setting
	for key, rv := range raw {
		f, ok := fields[key]
		if !ok {
			continue // etcd ignores keys it does not know
		}
		if sub, nested := sections[key]; nested {
			if rv == nil {
				continue // an empty section, as etcd reads it
			}
			m, isMap := rv.(map[string]any)
			if !isMap {
				return nil, fmt.Errorf("invalid %s", key)
			}
			out = append(out, sectionSettings(f, m, sub)...)
			continue
		}
		if skipZero[key] && f.IsZero() {
			continue
		}
		out = append(out, Setting{Flag: key, Value: format(f)})
	}
	if m, ok := raw["discovery-config"].(map[string]any); ok {
		out = append(out, discoveryClientSettings(c.DiscoveryCfg, m)...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Flag < out[j].Flag })
	return out, nil
}

// sectionSettings returns the settings of the keys present in one nested
// section.
func sectionSettings(section reflect.Value, present map[string]any, flags map[string]string) []Setting {
	fields := fieldsByKey(section)
	var out []Setting
	for key := range present {
		flag, ok := flags[key]
		f, known := fields[key]
		if ok && known {
			out = append(out, Setting{Flag: flag, Value: format(f)})
		}
	}
	return out
}

// fieldsByKey maps the JSON key of every field of struct v, including the
// fields of embedded structs, to the field.
func fieldsByKey(v reflect.Value) map[string]reflect.Value {
	out := map[string]reflect.Value{}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if sf.Anonymous {
			for k, f := range fieldsByKey(v.Field(i)) {
				out[k] = f
			}
			continue
		}
		if key, _, _ := strings.Cut(sf.Tag.Get("json"), ","); key != "" {
			out[key] = v.Field(i)
		}
	}
	return out
}

// format renders a decoded value in its flag's syntax.
func format(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Duration:
		return x.String()
	case []string:
		return strings.Join(x, ",")
	default:
		return fmt.Sprint(x)
	}
}

// The v3 discovery client's keys (discovery-config's client section and
// its secure and auth sections) and their flags; endpoints are apart.
var (
	discoveryClientFlags = map[string]string{"dial-timeout": "discovery-dial-timeout",
		"request-timeout": "discovery-request-timeout", "keepalive-time": "discovery-keepalive-time",
		"keepalive-timeout": "discovery-keepalive-timeout"}
	discoverySecureFlags = map[string]string{"cert": "discovery-cert", "key": "discovery-key",
		"cacert": "discovery-cacert", "insecure-transport": "discovery-insecure-transport",
		"insecure-skip-tls-verify": "discovery-insecure-skip-tls-verify"}
	discoveryAuthFlags = map[string]string{"username": "discovery-user", "password": "discovery-password"}
)

// discoveryClientSettings returns the flags set by the keys present in
// discovery-config's client section.
func discoveryClientSettings(d discovery, section map[string]any) []Setting {
	client, ok := section["client"].(map[string]any)
	if !ok {
		return nil
	}
	var out []Setting
	if len(d.Client.Endpoints) > 0 {
		out = append(out, Setting{Flag: "discovery-endpoints", Value: strings.Join(d.Client.Endpoints, ",")})
	}
	out = append(out, sectionSettings(reflect.ValueOf(d.Client), client, discoveryClientFlags)...)
	if m, ok := client["secure"].(map[string]any); ok {
		out = append(out, sectionSettings(reflect.ValueOf(d.Client.Secure), m, discoverySecureFlags)...)
	}
	if m, ok := client["auth"].(map[string]any); ok {
		out = append(out, sectionSettings(reflect.ValueOf(d.Client.Auth), m, discoveryAuthFlags)...)
	}
	return out
}
