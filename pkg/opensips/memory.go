package opensips

import (
	"context"
	"fmt"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/delivery"
)

// shmemParams asks get_statistics for the shared memory group: total_size,
// used_size, real_used_size (used plus the allocator's fragment headers),
// max_used_size, free_size, fragments.
var shmemParams = []byte(`{"statistics":["shmem:"]}`)

// SharedMemory reads how much of OpenSIPS's shared memory (opensips -m) is
// in use, for delivery's cap on the transactions imcd keeps there
// (delivery.MemoryReader). Used is real_used_size: what the allocator has
// taken, headers included, which is what runs out.
func (c *MIClient) SharedMemory(ctx context.Context) (delivery.Memory, error) {
	res, err := c.Call(ctx, "get_statistics", shmemParams)
	if err != nil {
		return delivery.Memory{}, err
	}
	return parseSharedMemory(res)
}

var _ delivery.MemoryReader = (*MIClient)(nil)

func parseSharedMemory(res []byte) (delivery.Memory, error) {
	var p fastjson.Parser
	v, err := p.ParseBytes(res)
	if err != nil {
		return delivery.Memory{}, fmt.Errorf("get_statistics shmem: %w", err)
	}
	total, used := v.Get("shmem:total_size"), v.Get("shmem:real_used_size")
	if total == nil || used == nil {
		return delivery.Memory{}, fmt.Errorf("get_statistics shmem: no shmem:total_size and shmem:real_used_size in %.200s", res)
	}
	m := delivery.Memory{Total: total.GetInt64(), Used: used.GetInt64()}
	if m.Total <= 0 || m.Used < 0 || m.Used > m.Total {
		return delivery.Memory{}, fmt.Errorf("get_statistics shmem: used %d of %d bytes makes no sense", m.Used, m.Total)
	}
	return m, nil
}
