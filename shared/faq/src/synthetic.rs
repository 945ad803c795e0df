//! A synthetic FAQ for benchmarks and load tests: any size, reproducible, half Chinese and
//! half English, every entry told apart by its number.

use crate::faq::FaqEntry;

/// `n` entries with six paraphrases each (answers "Answer {i}.").
pub fn faq(n: usize) -> Vec<FaqEntry> {
    const ZH: &[&str] = &[
        "订单",
        "退货",
        "退款",
        "快递",
        "物流",
        "发票",
        "优惠券",
        "会员",
        "积分",
        "地址",
        "修改",
        "取消",
        "包裹",
        "破损",
        "保修",
        "尺码",
        "库存",
        "预售",
        "支付",
        "运费",
        "价格",
        "换货",
        "售后",
        "配送",
    ];
    const EN: &[&str] = &[
        "order", "refund", "return", "parcel", "invoice", "coupon", "member", "points", "address",
        "change", "cancel", "damaged", "warranty", "size", "stock", "payment", "shipping", "price",
        "exchange", "delivery", "tracking", "account", "password", "gift",
    ];
    let mut rng = crate::classifier::XorShift(0x2545_f491_4f6c_dd1d);
    (0..n)
        .map(|i| {
            let zh = i % 2 == 0;
            let mut phrase = |suffix: String| {
                let words: Vec<&str> = (0..4)
                    .map(|_| {
                        let pool = if zh { ZH } else { EN };
                        pool[(rng.next() % pool.len() as u64) as usize]
                    })
                    .collect();
                let joined = if zh { words.concat() } else { words.join(" ") };
                format!("{joined} {suffix}")
            };
            FaqEntry {
                id: format!("gen-{i}"),
                question: phrase(i.to_string()),
                similar: (0..5).map(|k| phrase(format!("{i}-{k}"))).collect(),
                answer: format!("Answer {i}."),
                category: None,
                tags: Vec::new(),
                locale: None,
                quick_replies: Vec::new(),
            }
        })
        .collect()
}
