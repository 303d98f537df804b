package session

import (
	"container/heap"
	"time"
)

// schedule is a min-heap of deadlines. Entries may be stale (the session
// ended or moved its deadline); the sweep checks each against the session.
type schedule []deadlineItem

type deadlineItem struct {
	at time.Time
	id string
}

func (s schedule) Len() int           { return len(s) }
func (s schedule) Less(i, j int) bool { return s[i].at.Before(s[j].at) }
func (s schedule) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s *schedule) Push(x any)        { *s = append(*s, x.(deadlineItem)) }
func (s *schedule) Pop() any {
	old := *s
	it := old[len(old)-1]
	*s = old[:len(old)-1]
	return it
}

func (s *schedule) add(at time.Time, id string) { heap.Push(s, deadlineItem{at: at, id: id}) }

// popDue removes and returns the ids whose deadline is at or before now.
func (s *schedule) popDue(now time.Time) []string {
	var ids []string
	for s.Len() > 0 && !(*s)[0].at.After(now) {
		ids = append(ids, heap.Pop(s).(deadlineItem).id)
	}
	return ids
}

// next returns the earliest deadline.
func (s schedule) next() (time.Time, bool) {
	if len(s) == 0 {
		return time.Time{}, false
	}
	return s[0].at, true
}
