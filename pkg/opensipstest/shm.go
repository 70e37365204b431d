package opensipstest

import (
	"strconv"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/jsonrpc"
)

// getStatistics serves get_statistics / statistics:get for the group
// "shmem:" alone (params statistics, a list), from the model of Options'
// ShmSize, in the real build's order and names. Other statistics are not
// modelled: asking for them is an error, so that a test relying on one
// fails plainly (Handle serves them if a test needs one).
func (s *Server) getStatistics(r *request) {
	ps, je := miParams(r, []string{"statistics"})
	if je != nil {
		s.replyError(r, je)
		return
	}
	v := ps["statistics"]
	if v == nil || v.Type() != fastjson.TypeArray {
		s.replyError(r, errParamCount)
		return
	}
	for _, st := range v.GetArray() {
		if string(st.GetStringBytes()) != "shmem:" {
			s.replyError(r, &jsonrpc.Error{Code: 500, Message: "the fake OpenSIPS models only shmem:"})
			return
		}
	}
	outstanding, peak, _ := s.tx.counts()
	used := s.opts.ShmBase + int64(outstanding)*s.opts.ShmPerTransaction
	maxUsed := s.opts.ShmBase + int64(peak)*s.opts.ShmPerTransaction
	b := []byte(`{"shmem:total_size":`)
	b = strconv.AppendInt(b, s.opts.ShmSize, 10)
	b = append(b, `,"shmem:max_used_size":`...)
	b = strconv.AppendInt(b, maxUsed, 10)
	b = append(b, `,"shmem:free_size":`...)
	b = strconv.AppendInt(b, s.opts.ShmSize-used, 10)
	b = append(b, `,"shmem:used_size":`...)
	b = strconv.AppendInt(b, used, 10)
	b = append(b, `,"shmem:real_used_size":`...)
	b = strconv.AppendInt(b, used, 10)
	b = append(b, `,"shmem:fragments":`...)
	b = strconv.AppendInt(b, int64(outstanding)+1, 10)
	b = append(b, '}')
	s.replyResult(r, b)
}
