package topology

import (
	"reflect"
	"strings"
)

// Spellings of the original TestbedOS that this project reads differently
// from the rest of its schema.

// oneForMany reports whether a list of t may be written as one mapping: a
// machine's network, as the original allows.
func oneForMany(t reflect.Type) bool {
	return t.Elem() == reflect.TypeOf(NetworkAttachment{})
}

// unsupportedField explains a field of the original that names something
// this project has not got, instead of a bare "not a known field".
func unsupportedField(t reflect.Type, key string) (string, bool) {
	if t == reflect.TypeOf(Machine{}) && key == "android" {
		return "android guests are not supported (kinds: " + strings.Join([]string{KindNetns, KindLibvirt, KindDocker}, ", ") + ")", true
	}
	if t == reflect.TypeOf(CloudImage{}) && key == "context" {
		return "(the original's folder copied into the guest) is not supported here: bring its files into the guest from the setup_script, or bake them into the image", true
	}
	return "", false
}
