package gateway

import (
	"reflect"
	"testing"
)

func TestPresenceCountsChannels(t *testing.T) {
	var p presence
	alice := Participant{Name: "alice", Role: "agent", Channel: "shell"}
	sam := Participant{Name: "sam", Role: "supervisor", Channel: "watch"}
	steps := []struct {
		who     Participant
		joined  bool
		changed bool
		want    []Participant
	}{
		{alice, true, true, []Participant{alice}},
		{alice, true, false, []Participant{alice}}, // a second shell of alice's
		{sam, true, true, []Participant{alice, sam}},
		{alice, false, false, []Participant{alice, sam}},
		{alice, false, true, []Participant{sam}},
		{alice, false, false, []Participant{sam}}, // unbalanced leave: ignored
		{sam, false, true, []Participant{}},
	}
	for i, st := range steps {
		if got := p.change("s1", st.who, st.joined); got != st.changed {
			t.Errorf("step %d: changed = %v, want %v", i, got, st.changed)
		}
		if got := p.list("s1"); !reflect.DeepEqual(got, st.want) {
			t.Errorf("step %d: list = %v, want %v", i, got, st.want)
		}
	}
	if len(p.m) != 0 {
		t.Errorf("empty sessions kept: %v", p.m)
	}
}
