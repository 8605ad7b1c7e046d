package bertonnx

// A minimal hand-written ONNX protobuf encoder (onnx.proto, IR version 8).
// Only the fields the BERT graph needs are written; field numbers are those
// of onnx/onnx.proto3. Encoding is deterministic: fields are appended in a
// fixed order and no maps are involved.

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// ONNX TensorProto.DataType values.
const (
	dtFloat = 1
	dtInt64 = 7
)

// ONNX AttributeProto.AttributeType values.
const (
	attrFloat  = 1
	attrInt    = 2
	attrTensor = 4
	attrInts   = 7
)

// tensor is an ONNX TensorProto with its payload in raw_data (little endian).
type tensor struct {
	name     string
	dataType int32
	dims     []int64
	raw      []byte
}

func floatTensor(name string, dims []int64, values []float32) tensor {
	raw := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return tensor{name: name, dataType: dtFloat, dims: dims, raw: raw}
}

func int64Tensor(name string, dims []int64, values []int64) tensor {
	raw := make([]byte, 8*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return tensor{name: name, dataType: dtInt64, dims: dims, raw: raw}
}

func (t tensor) marshal() []byte {
	var b []byte
	if len(t.dims) > 0 { // dims = 1, packed
		var packed []byte
		for _, d := range t.dims {
			packed = protowire.AppendVarint(packed, uint64(d))
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, packed)
	}
	b = protowire.AppendTag(b, 2, protowire.VarintType) // data_type = 2
	b = protowire.AppendVarint(b, uint64(t.dataType))
	if t.name != "" { // name = 8
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendString(b, t.name)
	}
	b = protowire.AppendTag(b, 9, protowire.BytesType) // raw_data = 9
	b = protowire.AppendBytes(b, t.raw)
	return b
}

// attribute is an ONNX AttributeProto; exactly one value kind is used.
type attribute struct {
	name string
	kind int
	f    float32
	i    int64
	ints []int64
	t    *tensor
}

func (a attribute) marshal() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType) // name = 1
	b = protowire.AppendString(b, a.name)
	switch a.kind {
	case attrFloat: // f = 2 (fixed32)
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.f))
	case attrInt: // i = 3
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.i))
	case attrTensor: // t = 5
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, a.t.marshal())
	case attrInts: // ints = 8, packed
		var packed []byte
		for _, v := range a.ints {
			packed = protowire.AppendVarint(packed, uint64(v))
		}
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendBytes(b, packed)
	}
	b = protowire.AppendTag(b, 20, protowire.VarintType) // type = 20
	b = protowire.AppendVarint(b, uint64(a.kind))
	return b
}

func intAttr(name string, v int64) attribute { return attribute{name: name, kind: attrInt, i: v} }
func floatAttr(name string, v float32) attribute {
	return attribute{name: name, kind: attrFloat, f: v}
}
func intsAttr(name string, v ...int64) attribute {
	return attribute{name: name, kind: attrInts, ints: v}
}
func tensorAttr(name string, t tensor) attribute {
	return attribute{name: name, kind: attrTensor, t: &t}
}

// node is an ONNX NodeProto in the default domain.
type node struct {
	name    string
	opType  string
	inputs  []string
	outputs []string
	attrs   []attribute
}

func (n node) marshal() []byte {
	var b []byte
	for _, in := range n.inputs { // input = 1
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, in)
	}
	for _, out := range n.outputs { // output = 2
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, out)
	}
	b = protowire.AppendTag(b, 3, protowire.BytesType) // name = 3
	b = protowire.AppendString(b, n.name)
	b = protowire.AppendTag(b, 4, protowire.BytesType) // op_type = 4
	b = protowire.AppendString(b, n.opType)
	for _, a := range n.attrs { // attribute = 5
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, a.marshal())
	}
	return b
}

// dim is one dimension of a ValueInfo shape: a fixed value or a symbolic name.
type dim struct {
	value int64
	param string
}

// valueInfo is an ONNX ValueInfoProto for a tensor.
type valueInfo struct {
	name     string
	elemType int32
	shape    []dim
}

func (v valueInfo) marshal() []byte {
	var shape []byte
	for _, d := range v.shape { // TensorShapeProto.dim = 1
		var db []byte
		if d.param != "" {
			db = protowire.AppendTag(db, 2, protowire.BytesType) // dim_param = 2
			db = protowire.AppendString(db, d.param)
		} else {
			db = protowire.AppendTag(db, 1, protowire.VarintType) // dim_value = 1
			db = protowire.AppendVarint(db, uint64(d.value))
		}
		shape = protowire.AppendTag(shape, 1, protowire.BytesType)
		shape = protowire.AppendBytes(shape, db)
	}
	var tt []byte                                         // TypeProto.Tensor
	tt = protowire.AppendTag(tt, 1, protowire.VarintType) // elem_type = 1
	tt = protowire.AppendVarint(tt, uint64(v.elemType))
	tt = protowire.AppendTag(tt, 2, protowire.BytesType) // shape = 2
	tt = protowire.AppendBytes(tt, shape)
	var typ []byte                                         // TypeProto
	typ = protowire.AppendTag(typ, 1, protowire.BytesType) // tensor_type = 1
	typ = protowire.AppendBytes(typ, tt)

	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType) // name = 1
	b = protowire.AppendString(b, v.name)
	b = protowire.AppendTag(b, 2, protowire.BytesType) // type = 2
	b = protowire.AppendBytes(b, typ)
	return b
}

// graph is an ONNX GraphProto.
type graph struct {
	name         string
	nodes        []node
	initializers []tensor
	inputs       []valueInfo
	outputs      []valueInfo
}

func (g graph) marshal() []byte {
	var b []byte
	for _, n := range g.nodes { // node = 1
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, n.marshal())
	}
	b = protowire.AppendTag(b, 2, protowire.BytesType) // name = 2
	b = protowire.AppendString(b, g.name)
	for _, t := range g.initializers { // initializer = 5
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, t.marshal())
	}
	for _, v := range g.inputs { // input = 11
		b = protowire.AppendTag(b, 11, protowire.BytesType)
		b = protowire.AppendBytes(b, v.marshal())
	}
	for _, v := range g.outputs { // output = 12
		b = protowire.AppendTag(b, 12, protowire.BytesType)
		b = protowire.AppendBytes(b, v.marshal())
	}
	return b
}

const (
	irVersion = 8  // ONNX IR version matching opset 17.
	opset     = 17 // default-domain operator set.
)

// marshalModel encodes an ONNX ModelProto around g.
func marshalModel(g graph, producerName, producerVersion string) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType) // ir_version = 1
	b = protowire.AppendVarint(b, irVersion)
	b = protowire.AppendTag(b, 2, protowire.BytesType) // producer_name = 2
	b = protowire.AppendString(b, producerName)
	b = protowire.AppendTag(b, 3, protowire.BytesType) // producer_version = 3
	b = protowire.AppendString(b, producerVersion)
	b = protowire.AppendTag(b, 7, protowire.BytesType) // graph = 7
	b = protowire.AppendBytes(b, g.marshal())
	var op []byte                                        // OperatorSetIdProto
	op = protowire.AppendTag(op, 1, protowire.BytesType) // domain = 1 ("" = ai.onnx)
	op = protowire.AppendString(op, "")
	op = protowire.AppendTag(op, 2, protowire.VarintType) // version = 2
	op = protowire.AppendVarint(op, opset)
	b = protowire.AppendTag(b, 8, protowire.BytesType) // opset_import = 8
	b = protowire.AppendBytes(b, op)
	return b
}
