package models

import "testing"

func TestBlendColdStartRules(t *testing.T) {
	content := Normalize([]float32{1, 0, 0})
	taste := Normalize([]float32{0, 1, 0})
	if got := Blend(content, taste, 0.3); Dot(got, Normalized([]float32{0.7, 0.3, 0})) < 0.99999 {
		t.Fatalf("blend %v, want the direction of 0.7·content + 0.3·taste", got)
	}
	if got := Blend(content, nil, 0.3); &got[0] != &content[0] {
		t.Fatal("without a behaviour vector the content is served")
	}
	if got := Blend(content, []float32{1, 0}, 0.3); &got[0] != &content[0] {
		t.Fatal("a behaviour vector of another dimension is ignored")
	}
	if got := Blend(content, taste, 0); &got[0] != &content[0] {
		t.Fatal("w = 0 serves the content only")
	}
	if got := Blend(nil, taste, 0.3); &got[0] != &taste[0] {
		t.Fatal("without content the behaviour vector is served")
	}
	if got := Blend(nil, nil, 0.3); got != nil {
		t.Fatalf("neither: %v, want nil", got)
	}
}
