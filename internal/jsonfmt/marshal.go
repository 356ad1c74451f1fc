package jsonfmt

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"
)

// Marshal encodes v, a struct (not a pointer), by the conventions of the package doc,
// whatever its fields' tags say, keeping its fields' names and order: a time.Time is
// written in TimeLayout and left out when zero, a string (of any string type) is left
// out when empty, a nil slice or map is written [] or {}, a number or a boolean is
// always written, a nil pointer is left out. A field's own type keeps its MarshalJSON
// (a []T of a type T with one uses it). v must not embed a struct (encode such a
// type with Merge). It is what the MarshalJSON methods of the modelevent and control
// types call: a field added to one of them follows the conventions with no more code.
func Marshal(v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	p, err := planOf(rv.Type())
	if err != nil {
		return nil, err
	}
	out := reflect.New(p.shadow).Elem()
	for i, f := range p.fields {
		src := rv.Field(f.index)
		dst := out.Field(i)
		switch f.kind {
		case kindTime:
			dst.Set(reflect.ValueOf(Time(src.Interface().(time.Time))))
		case kindSlice:
			if src.IsNil() {
				dst.Set(reflect.MakeSlice(src.Type(), 0, 0))
			} else {
				dst.Set(src)
			}
		case kindMap:
			if src.IsNil() {
				dst.Set(reflect.MakeMap(src.Type()))
			} else {
				dst.Set(src)
			}
		default:
			dst.Set(src)
		}
	}
	return json.Marshal(out.Interface())
}

type fieldKind int

const (
	kindOther fieldKind = iota
	kindTime
	kindSlice
	kindMap
)

type plan struct {
	shadow reflect.Type
	fields []planField
}

type planField struct {
	index int
	kind  fieldKind
}

var plans sync.Map // reflect.Type → *plan

var timeType = reflect.TypeFor[time.Time]()

func planOf(t reflect.Type) (*plan, error) {
	if p, ok := plans.Load(t); ok {
		return p.(*plan), nil
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("jsonfmt: marshal %s: not a struct", t)
	}
	p := &plan{}
	var fields []reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			return nil, fmt.Errorf("jsonfmt: marshal %s: embedded %s (use Merge)", t, f.Name)
		}
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		kind, typ, opt := kindOther, f.Type, ""
		switch {
		case f.Type == timeType:
			kind, typ, opt = kindTime, reflect.TypeFor[Time](), ",omitzero"
		case f.Type.Kind() == reflect.String:
			opt = ",omitempty"
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() != reflect.Uint8:
			kind = kindSlice
		case f.Type.Kind() == reflect.Slice: // []byte: base64, left out when empty
			opt = ",omitempty"
		case f.Type.Kind() == reflect.Map:
			kind = kindMap
		case f.Type.Kind() == reflect.Pointer, f.Type.Kind() == reflect.Interface:
			opt = ",omitempty"
		}
		fields = append(fields, reflect.StructField{Name: f.Name, Type: typ, Tag: reflect.StructTag(`json:"` + name + opt + `"`)})
		p.fields = append(p.fields, planField{index: i, kind: kind})
	}
	p.shadow = reflect.StructOf(fields)
	actual, _ := plans.LoadOrStore(t, p)
	return actual.(*plan), nil
}
