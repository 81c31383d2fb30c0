package objstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tierkv/tierkv/objstore"
)

// Create a manifest with create-if-absent; a second writer loses.
func ExampleOpen() {
	ctx := context.Background()
	s, err := objstore.Open(ctx, "mem://example/partition-0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	body := `{"version":1}`
	err = s.Put(ctx, "manifests/00000000000000000001", strings.NewReader(body), int64(len(body)), objstore.PutOptions{IfAbsent: true})
	fmt.Println("first create:", err)
	err = s.Put(ctx, "manifests/00000000000000000001", strings.NewReader(body), int64(len(body)), objstore.PutOptions{IfAbsent: true})
	fmt.Println("second create lost:", errors.Is(err, objstore.ErrPrecondition))
	rc, info, _ := s.Get(ctx, "manifests/00000000000000000001")
	data, _ := io.ReadAll(rc)
	rc.Close()
	fmt.Println(info.Size, string(data))
	// Output:
	// first create: <nil>
	// second create lost: true
	// 13 {"version":1}
}

func ExampleRedact() {
	fmt.Println(objstore.Redact("s3://AKIA:secret@bucket/p?region=eu-west-1"))
	// Output: s3://REDACTED@bucket/p?region=eu-west-1
}
