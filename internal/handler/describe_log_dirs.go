package handler

// DescribeLogDirs v0-4: per log dir, the size of each hosted partition (all of them for
// a null topic list) and, from v4, the file system's total and usable bytes. A log dir
// taken offline by a storage failure is answered, as Kafka does, with
// KAFKA_STORAGE_ERROR and nothing else.

import (
	"context"
	"path/filepath"
	"syscall"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *Handler) describeLogDirs(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	type want map[int32]bool
	var filter map[string]want
	if req.Topics != nil {
		filter = map[string]want{}
		for _, t := range req.Topics {
			w := want{}
			for _, p := range t.Partitions {
				w[p] = true
			}
			filter[t.Topic] = w
		}
	}
	dirs := map[string]*kmsg.DescribeLogDirsResponseDir{}
	var order []string
	for _, d := range h.b.Config().LogDirs {
		abs, _ := filepath.Abs(d)
		rd := kmsg.NewDescribeLogDirsResponseDir()
		rd.Dir = abs
		rd.TotalBytes, rd.UsableBytes = -1, -1
		var st syscall.Statfs_t
		if err := h.b.LogDirErr(d); err != nil {
			rd.ErrorCode = codeOf(err)
		} else if syscall.Statfs(d, &st) == nil {
			rd.TotalBytes = int64(st.Blocks) * int64(st.Bsize)
			rd.UsableBytes = int64(st.Bavail) * int64(st.Bsize)
		}
		dirs[abs] = &rd
		order = append(order, abs)
	}
	for _, name := range h.b.Image().TopicNames() {
		t := h.b.Topic(name)
		if t == nil {
			continue
		}
		var w want
		if filter != nil {
			if w = filter[name]; w == nil {
				continue
			}
		}
		for _, p := range t.Partitions {
			if p == nil {
				continue // placed on other brokers only
			}
			if w != nil && !w[p.Index] {
				continue
			}
			abs, _ := filepath.Abs(filepath.Dir(p.Log().Dir()))
			rd := dirs[abs]
			if rd == nil || rd.ErrorCode != 0 {
				continue
			}
			n := len(rd.Topics)
			if n == 0 || rd.Topics[n-1].Topic != name {
				rd.Topics = append(rd.Topics, kmsg.DescribeLogDirsResponseDirTopic{Topic: name})
				n++
			}
			rd.Topics[n-1].Partitions = append(rd.Topics[n-1].Partitions, kmsg.DescribeLogDirsResponseDirTopicPartition{
				Partition: p.Index, Size: p.Log().Size(),
			})
		}
	}
	for _, d := range order {
		resp.Dirs = append(resp.Dirs, *dirs[d])
	}
	return resp
}
