package bus

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DecodeSettings decodes a backend's settings (Config.BackendSettings) into dst, a
// pointer to a struct whose fields carry `yaml` tags. Unknown keys and values of the
// wrong type are errors naming the key's path under "backend_settings" and what is
// accepted. Durations are strings such as "100ms" or "7d" (ParseDuration); a []string also takes a
// comma-separated string (handy in environment variables).
func DecodeSettings(settings map[string]any, dst any) error {
	return decodeInto("backend_settings", settings, dst)
}

func decodeInto(path string, src map[string]any, dst any) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("%s: decode needs a pointer to a struct, got %T", path, dst)
	}
	if src == nil {
		return nil
	}
	return decodeValue(path, src, v.Elem())
}

var (
	durationType        = reflect.TypeOf(time.Duration(0))
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// fieldKeys maps the yaml keys of struct type t to field index paths (for
// reflect.Value.FieldByIndex); the keys of an embedded struct tagged `yaml:",inline"`
// are keys of t, as yaml.v3 reads them.
func fieldKeys(t reflect.Type) (map[string][]int, []string) {
	keys := map[string][]int{}
	var names []string
	var add func(t reflect.Type, prefix []int)
	add = func(t reflect.Type, prefix []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := strings.Split(f.Tag.Get("yaml"), ",")
			idx := append(append([]int{}, prefix...), i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct && slices.Contains(tag[1:], "inline") {
				add(f.Type, idx)
				continue
			}
			name := tag[0]
			if name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			keys[name] = idx
			names = append(names, name)
		}
	}
	add(t, nil)
	sort.Strings(names)
	return keys, names
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func decodeValue(path string, src any, dst reflect.Value) error {
	if src == nil {
		return nil // an empty value keeps the default
	}
	if dst.CanAddr() && dst.Addr().Type().Implements(textUnmarshalerType) {
		s, ok := src.(string)
		if !ok {
			s = fmt.Sprint(src)
		}
		if err := dst.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	}
	if dst.Type() == durationType {
		s, ok := src.(string)
		if !ok {
			return fmt.Errorf("%s: want a duration such as \"250ms\" or \"10s\", got %v", path, describe(src))
		}
		d, err := ParseDuration(s)
		if err != nil || d < 0 {
			return fmt.Errorf("%s: %q is not a duration (want e.g. \"250ms\", \"10s\", \"1m\", \"7d\"; d is 24h)", path, s)
		}
		dst.SetInt(int64(d))
		return nil
	}
	switch dst.Kind() {
	case reflect.Struct:
		m, ok := asMap(src)
		if !ok {
			return fmt.Errorf("%s: want a mapping of keys, got %v", path, describe(src))
		}
		keys, names := fieldKeys(dst.Type())
		sorted := make([]string, 0, len(m))
		for k := range m {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			i, ok := keys[k]
			if !ok {
				return fmt.Errorf("%s: unknown key (accepted: %s)", join(path, k), strings.Join(names, ", "))
			}
			if err := decodeValue(join(path, k), m[k], dst.FieldByIndex(i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		if dst.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("%s: unsupported map type %s", path, dst.Type())
		}
		m, ok := asMap(src)
		if !ok {
			return fmt.Errorf("%s: want a mapping of keys, got %v", path, describe(src))
		}
		out := reflect.MakeMapWithSize(dst.Type(), len(m))
		for k, v := range m {
			ev := reflect.New(dst.Type().Elem()).Elem()
			if err := decodeValue(join(path, k), v, ev); err != nil {
				return err
			}
			out.SetMapIndex(reflect.ValueOf(k), ev)
		}
		dst.Set(out)
		return nil
	case reflect.Interface:
		dst.Set(reflect.ValueOf(src))
		return nil
	case reflect.Slice:
		var items []any
		switch s := src.(type) {
		case []any:
			items = s
		case []string:
			for _, v := range s {
				items = append(items, v)
			}
		case string:
			if strings.TrimSpace(s) == "" {
				dst.Set(reflect.MakeSlice(dst.Type(), 0, 0))
				return nil
			}
			for _, part := range strings.Split(s, ",") {
				items = append(items, strings.TrimSpace(part))
			}
		default:
			rv := reflect.ValueOf(src)
			if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
				return fmt.Errorf("%s: want a list, got %v", path, describe(src))
			}
			for i := 0; i < rv.Len(); i++ {
				items = append(items, rv.Index(i).Interface())
			}
		}
		out := reflect.MakeSlice(dst.Type(), len(items), len(items))
		for i, it := range items {
			if err := decodeValue(fmt.Sprintf("%s[%d]", path, i), it, out.Index(i)); err != nil {
				return err
			}
		}
		dst.Set(out)
		return nil
	case reflect.String:
		switch s := src.(type) {
		case string:
			dst.SetString(s)
		case int, int64, float64, bool:
			dst.SetString(fmt.Sprint(s))
		default:
			return fmt.Errorf("%s: want a string, got %v", path, describe(src))
		}
		return nil
	case reflect.Bool:
		switch b := src.(type) {
		case bool:
			dst.SetBool(b)
		case string:
			v, err := strconv.ParseBool(strings.TrimSpace(b))
			if err != nil {
				return fmt.Errorf("%s: %q is not a boolean (want true or false)", path, b)
			}
			dst.SetBool(v)
		default:
			return fmt.Errorf("%s: want true or false, got %v", path, describe(src))
		}
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := asInt(src)
		if err != nil || dst.OverflowInt(n) {
			return fmt.Errorf("%s: want a whole number, got %v", path, describe(src))
		}
		dst.SetInt(n)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := asInt(src)
		if err != nil || n < 0 || dst.OverflowUint(uint64(n)) {
			return fmt.Errorf("%s: want a whole number ≥ 0, got %v", path, describe(src))
		}
		dst.SetUint(uint64(n))
		return nil
	case reflect.Float32, reflect.Float64:
		var f float64
		switch x := src.(type) {
		case float64:
			f = x
		case int:
			f = float64(x)
		case int64:
			f = float64(x)
		case string:
			v, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			if err != nil {
				return fmt.Errorf("%s: %q is not a number", path, x)
			}
			f = v
		default:
			return fmt.Errorf("%s: want a number, got %v", path, describe(src))
		}
		dst.SetFloat(f)
		return nil
	case reflect.Pointer:
		ev := reflect.New(dst.Type().Elem())
		if err := decodeValue(path, src, ev.Elem()); err != nil {
			return err
		}
		dst.Set(ev)
		return nil
	}
	return fmt.Errorf("%s: unsupported setting type %s", path, dst.Type())
}

// ParseDuration is time.ParseDuration that also takes a leading number of days, 24h
// each: "7d", "1.5d", "1d12h". Config durations and the CLI's age flags use it.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	num, rest, ok := strings.Cut(s, "d")
	if !ok || num == "" || strings.ContainsAny(num, "hmsuµn") {
		return time.ParseDuration(s)
	}
	days, err := strconv.ParseFloat(num, 64)
	if err != nil || days < 0 || days > 100*365 {
		return 0, fmt.Errorf("time: invalid duration %q", s)
	}
	d := time.Duration(days * float64(24*time.Hour))
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 {
			return 0, fmt.Errorf("time: invalid duration %q", s)
		}
		d += r
	}
	return d, nil
}

func asMap(src any) (map[string]any, bool) {
	switch m := src.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[fmt.Sprint(k)] = v
		}
		return out, true
	}
	rv := reflect.ValueOf(src)
	if rv.Kind() == reflect.Map && rv.Type().Key().Kind() == reflect.String {
		out := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			out[it.Key().String()] = it.Value().Interface()
		}
		return out, true
	}
	return nil, false
}

func asInt(src any) (int64, error) {
	switch x := src.(type) {
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, fmt.Errorf("too large")
		}
		return int64(x), nil
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return 0, fmt.Errorf("not whole")
		}
		return int64(x), nil
	case string:
		return strconv.ParseInt(strings.TrimSpace(x), 10, 64)
	}
	return 0, fmt.Errorf("not a number")
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a mapping"
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	}
	return fmt.Sprintf("%v (%T)", v, v)
}
