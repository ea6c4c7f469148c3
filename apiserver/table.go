package apiserver

import (
	"encoding/json"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tinykube/tinykube/apiserver/registry"
)

// tableOptions reads includeObject and noHeaders from the query.
func tableOptions(r *http.Request) (metav1.TableOptions, error) {
	var opts metav1.TableOptions
	q := r.URL.Query()
	if err := metav1.Convert_url_Values_To_v1_TableOptions(&q, &opts, nil); err != nil {
		return opts, apierrors.NewBadRequest(err.Error())
	}
	if opts.IncludeObject == "" {
		opts.IncludeObject = metav1.IncludeMetadata
	}
	return opts, nil
}

// toTable answers as=Table for an object or a list.
func (s *Server) toTable(r *http.Request, res *registry.Resource, obj runtime.Object) (*metav1.Table, error) {
	opts, err := tableOptions(r)
	if err != nil {
		return nil, err
	}
	return s.tableFor(res, obj, !opts.NoHeaders, opts.IncludeObject)
}

// tableFor builds the Table of obj (an object or a list of res); include
// says what each row carries in rows[].object.
func (s *Server) tableFor(res *registry.Resource, obj runtime.Object, headers bool, include metav1.IncludeObjectPolicy) (*metav1.Table, error) {
	tc := res.Table
	if tc == nil {
		tc = registry.DefaultTable
	}
	table := &metav1.Table{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"}}
	if headers {
		table.ColumnDefinitions = tc.Columns
	}
	now := s.now()
	addRow := func(item runtime.Object) error {
		row := metav1.TableRow{Cells: tc.Cells(item, now)}
		var embedded runtime.Object
		switch include {
		case metav1.IncludeObject:
			embedded = item
		case metav1.IncludeMetadata:
			embedded = partialObject(item)
		}
		if embedded != nil {
			raw, err := json.Marshal(embedded)
			if err != nil {
				return err
			}
			row.Object = runtime.RawExtension{Raw: raw}
		}
		table.Rows = append(table.Rows, row)
		return nil
	}
	if meta.IsListType(obj) {
		if lm, err := meta.ListAccessor(obj); err == nil {
			table.ResourceVersion = lm.GetResourceVersion()
			table.Continue = lm.GetContinue()
			table.RemainingItemCount = lm.GetRemainingItemCount()
		}
		if err := meta.EachListItem(obj, addRow); err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		if table.Rows == nil {
			table.Rows = []metav1.TableRow{}
		}
		return table, nil
	}
	table.ResourceVersion = accessor(obj).GetResourceVersion()
	if err := addRow(obj); err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return table, nil
}
