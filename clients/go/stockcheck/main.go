// Command stockcheck lists Emporium's products with their stock, calling the catalog and
// inventory services directly over gRPC with the generated Go stubs (gen/go).
//
//	stockcheck                         the first page, as a table
//	stockcheck -all -json              every product, one JSON object per line
//	stockcheck -query coffee -catalog 127.0.0.1:50052 -inventory 127.0.0.1:50053
//
// Build it with clients/go/build (a GOPATH build against Debian's Go libraries; see
// docs/clients.md). Both RPCs are public: no token is needed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	catalogv1 "emporium.example/gen/go/emporium/catalog/v1"
	commonv1 "emporium.example/gen/go/emporium/common/v1"
	inventoryv1 "emporium.example/gen/go/emporium/inventory/v1"
	"google.golang.org/grpc"
)

// Line is one product with its stock, as printed with -json.
type Line struct {
	ProductID  string `json:"product_id"`
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceMinor int64  `json:"price_minor"`
	Currency   string `json:"currency"`
	Available  int64  `json:"available"`
	Reserved   int64  `json:"reserved"`
	Sold       int64  `json:"sold"`
}

func main() {
	catalogTarget := flag.String("catalog", "127.0.0.1:50052", "catalog service host:port")
	inventoryTarget := flag.String("inventory", "127.0.0.1:50053", "inventory service host:port")
	pageSize := flag.Int("page-size", 10, "products per ListProducts page")
	query := flag.String("query", "", "only products whose name or description contains this")
	all := flag.Bool("all", false, "follow next_page_token through every page")
	asJSON := flag.Bool("json", false, "print one JSON object per product")
	timeout := flag.Duration("timeout", 30*time.Second, "deadline for the whole run")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	lines, err := run(ctx, *catalogTarget, *inventoryTarget, *pageSize, *query, *all)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stockcheck:", err)
		os.Exit(1)
	}
	if *asJSON {
		encoder := json.NewEncoder(os.Stdout)
		for _, line := range lines {
			if err := encoder.Encode(line); err != nil {
				fmt.Fprintln(os.Stderr, "stockcheck:", err)
				os.Exit(1)
			}
		}
		return
	}
	table := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(table, "SKU\tNAME\tPRICE\tAVAILABLE\tRESERVED\tSOLD")
	for _, l := range lines {
		fmt.Fprintf(table, "%s\t%s\t%s\t%d\t%d\t%d\n", l.SKU, l.Name, price(l.PriceMinor, l.Currency), l.Available, l.Reserved, l.Sold)
	}
	table.Flush()
}

// dial opens a plaintext connection (grpc-go 1.33: WithInsecure; newer releases spell it
// credentials/insecure).
func dial(target string) (*grpc.ClientConn, error) {
	conn, err := grpc.Dial(target, grpc.WithInsecure())
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	return conn, nil
}

func run(ctx context.Context, catalogTarget, inventoryTarget string, pageSize int, query string, all bool) ([]Line, error) {
	catalogConn, err := dial(catalogTarget)
	if err != nil {
		return nil, err
	}
	defer catalogConn.Close()
	inventoryConn, err := dial(inventoryTarget)
	if err != nil {
		return nil, err
	}
	defer inventoryConn.Close()
	products := catalogv1.NewCatalogServiceClient(catalogConn)
	stock := inventoryv1.NewInventoryServiceClient(inventoryConn)

	var lines []Line
	token := ""
	for {
		page, err := products.ListProducts(ctx, &catalogv1.ListProductsRequest{
			PageSize:  int32(pageSize),
			PageToken: token,
			Query:     query,
		})
		if err != nil {
			return nil, fmt.Errorf("ListProducts: %w", err)
		}
		for _, p := range page.GetProducts() {
			level, err := stock.GetStock(ctx, &inventoryv1.GetStockRequest{Sku: p.GetSku()})
			if err != nil {
				return nil, fmt.Errorf("GetStock %s: %w", p.GetSku(), err)
			}
			lines = append(lines, line(p, level.GetStock()))
		}
		token = page.GetNextPageToken()
		if !all || token == "" {
			return lines, nil
		}
	}
}

func line(p *catalogv1.Product, s *inventoryv1.StockLevel) Line {
	money := p.GetPrice()
	if money == nil {
		money = &commonv1.Money{}
	}
	return Line{
		ProductID:  p.GetProductId(),
		SKU:        p.GetSku(),
		Name:       p.GetName(),
		PriceMinor: money.GetAmountMinor(),
		Currency:   money.GetCurrencyCode(),
		Available:  s.GetAvailable(),
		Reserved:   s.GetReserved(),
		Sold:       s.GetSold(),
	}
}

// zeroDecimal lists ISO 4217 currencies without a minor unit (amounts are whole units).
var zeroDecimal = map[string]bool{"JPY": true, "KRW": true, "ISK": true, "CLP": true, "VND": true}

// price renders minor units exactly (integer arithmetic): 4299 EUR → "42.99 EUR".
func price(minor int64, currency string) string {
	if zeroDecimal[currency] {
		return fmt.Sprintf("%d %s", minor, currency)
	}
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return strings.TrimSpace(fmt.Sprintf("%s%d.%02d %s", sign, minor/100, minor%100, currency))
}
