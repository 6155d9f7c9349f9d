//! The command line: raw flags as clap parses them (`Opts`), and the checked request the program runs on
//! (`Request`). Everything that can be checked before the model loads is checked in `Opts::resolve`.
use classify_image::{error::Error, models, sink, LabelSource, ModelId};
use clap::{builder::PossibleValuesParser, Parser};
use std::path::PathBuf;
use tch::Device;

/// Classify an image with an ImageNet-pretrained CNN, print the top 5 classes, and show the image with the
/// top-1 label drawn on it (or write it with --output).
#[derive(Debug, Parser)]
#[command(name = "classify-image", version)]
pub struct Opts {
    /// Path to the input image
    #[arg(short, long, value_name = "PATH")]
    image: PathBuf,

    /// Name of the pre-trained network to use (the seed's vgg16, vgg19, inception, densenet, resnet, or any
    /// model of the zoo: see `classify-image weights list`)
    #[arg(short, long, default_value = "vgg16", value_parser = PossibleValuesParser::new(models::names()),
          hide_possible_values = true)]
    model: String,

    /// Weights file (.pth, .pt or .safetensors) to use instead of the official one
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,

    /// Write the annotated image to FILE (format from its extension) instead of showing a window
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Class names, one per line [default: the built-in ImageNet labels]
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,

    /// Where to run: auto (CUDA if available, else CPU), cpu, cuda or cuda:N
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    device: String,
}

/// Where the annotated image goes.
#[derive(Debug)]
pub enum Sink {
    Window,
    File(PathBuf),
}

/// A checked request.
#[derive(Debug)]
pub struct Request {
    pub image: PathBuf,
    pub model: ModelId,
    /// The model's name as the user gave it (the seed prints it).
    pub model_name: String,
    pub weights: Option<PathBuf>,
    pub labels: LabelSource,
    pub device: Device,
    pub sink: Sink,
}

impl Opts {
    pub fn resolve(self) -> Result<Request, Error> {
        let device = parse_device(&self.device)?;
        let sink = match self.output {
            Some(path) => {
                sink::check_output(&path, &[&self.image])?;
                Sink::File(path)
            }
            None => {
                sink::check_display()?;
                Sink::Window
            }
        };
        Ok(Request {
            image: self.image,
            model: ModelId::from_name(&self.model).expect("clap accepted only registry names"),
            model_name: self.model,
            weights: self.weights,
            labels: self.labels.map_or(LabelSource::ImageNet, LabelSource::File),
            device,
            sink,
        })
    }
}

fn parse_device(arg: &str) -> Result<Device, Error> {
    let cuda_count = || tch::Cuda::device_count();
    let device = match arg {
        "auto" => return Ok(classify_image::config::default_device()),
        "cpu" => return Ok(Device::Cpu),
        "cuda" => Device::Cuda(0),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => Device::Cuda(n),
            None => {
                return Err(Error::Usage(format!(
                    "unknown device '{other}'; use auto, cpu, cuda or cuda:N"
                )))
            }
        },
    };
    let Device::Cuda(n) = device else { unreachable!("only CUDA devices reach here") };
    if (n as i64) < cuda_count() {
        Ok(device)
    } else {
        Err(Error::Usage(format!(
            "--device {arg}: libtorch sees {} CUDA device(s) (no GPU, no driver, or a CPU-only build); use --device cpu",
            cuda_count()
        )))
    }
}
